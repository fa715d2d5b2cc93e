"""The grading path of the course, read top to bottom (no imports here: the sandboxes import
single modules of this package).

    submission -> plugins.SandboxedExecute (nbgrader's process)
               -> session: a runner sandbox (runner.py, the student's cells)
                           and a judge sandbox (judge.py, the test cells), speaking wire.py
               -> verdicts -> nbgrader -> gradebook; autograde.py checks the gradebook against them

proxies.py is how the judge sees student objects, standins.py what a test may hand to student
code, sandbox.py the bubblewrap sandboxes, redflags.py what a human should look at.
"""
