"""Evaluation of the grader and of speed (never imported by the grading path): the corpus of wrong
and right answers, mutation testing, the hostile submissions, the fast variant driver that all of
them grade with (qa/fastgrade.py, the judge of coursetools/grading), and the benchmarks."""
