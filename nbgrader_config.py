"""nbgrader configuration of Unit 0.0「ニューラルエンジンの深部」.

The course directory is the folder of this file: source/ (masters), release/ (generated).
Everything nbgrader writes while grading (gradebook.db, submitted/, autograded/, feedback/,
grades.csv) is machine-local state and is ignored by git.
"""
import os
import sys

from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.preprocessors import Execute, OverwriteCells

c = get_config()  # noqa: F821  (provided by traitlets when this file is loaded)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))
if COURSE_ROOT not in sys.path:
    sys.path.insert(0, COURSE_ROOT)
from coursetools.grading.plugins import (  # noqa: E402
    ClearHiddenTests, ConciseFailures, KeepPointsOnStderr, QuietOverwriteCells, SandboxedExecute,
    SanitizeStudentContent,
)

c.CourseDirectory.root = COURSE_ROOT
c.CourseDirectory.course_id = "neural-engine-unit00"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_ROOT, "gradebook.db")

# What students see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# ここにコードを書いてください\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "ここに解答を書いてください。"

# Execution (Validate): a per-cell time limit; a runaway cell is interrupted and the rest still runs.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# Autograde does not use Execute: SandboxedExecute runs the student's cells in a bubblewrap sandbox of
# their own and the test cells in another one (coursetools/grading/), so no test code ever runs where
# student code runs, and nbgrader's process runs neither. 60 s per cell, 900 s per submission; the
# cells after the last graded test cell are not run (no verdict depends on them).
c.SandboxedExecute.timeout = 60
c.SandboxedExecute.deadline = 900
c.SandboxedExecute.stop_after_last_test = True

# A submission whose test cells were deleted gets them back from the gradebook.
c.OverwriteCells.add_missing_cells = True            # QuietOverwriteCells takes OverwriteCells' settings
c.OverwriteCells.missing_cell_notification = (
    "このセル (id:{cell_id}) は提出物から削除されていたため、採点時に nbgrader が元に戻しました。\n\n"
)

# Bounded output in graded notebooks and feedback.
c.LimitOutput.max_lines = 300
c.LimitOutput.max_traceback = 40

# Warnings printed to stderr by correct code must not zero a test cell (see KeepPointsOnStderr);
# what students wrote (markdown, outputs) is sanitised before anyone opens it in a browser.
_preprocessors = list(Autograde.class_traits()["autograde_preprocessors"].default())
_preprocessors[_preprocessors.index(Execute)] = SandboxedExecute
_preprocessors.insert(_preprocessors.index(SandboxedExecute) + 1, KeepPointsOnStderr)
_preprocessors.insert(_preprocessors.index(KeepPointsOnStderr) + 1, SanitizeStudentContent)
c.Autograde.autograde_preprocessors = _preprocessors
# Test cells are put back from the gradebook as before, without the "checksum has changed" warning
# that every honest submission caused (the release's test cells lack the hidden tests).
_sanitize = list(Autograde.class_traits()["sanitize_preprocessors"].default())
_sanitize[_sanitize.index(OverwriteCells)] = QuietOverwriteCells
c.Autograde.sanitize_preprocessors = _sanitize

# Feedback released to students shows neither the hidden tests nor tracebacks quoting them: a failing
# test cell shows its Japanese message only (autograded/ keeps everything for instructors).
c.GenerateFeedback.preprocessors = [ClearHiddenTests, ConciseFailures, SanitizeStudentContent] + list(
    GenerateFeedback.class_traits()["preprocessors"].default()
)
