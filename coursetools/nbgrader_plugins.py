"""nbgrader preprocessors used by nbgrader_config.py."""
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor


class KeepPointsOnStderr(NbGraderPreprocessor):
    """Let a graded test cell keep its points when it only wrote to stderr.

    nbgrader 0.9 gives zero points to a test cell with *any* stderr output, so a correct answer
    that triggers a harmless warning (a NumPy RuntimeWarning, a DeprecationWarning) would lose
    points. Our tests signal failure by raising (an `error` output), never through stderr, so the
    stderr text is kept, relabelled as stdout, and only real errors cost points.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class ConciseFailures(NbGraderPreprocessor):
    """Feedback: a failing graded test cell shows only its exception line, not the traceback.

    The exception line carries the test's Japanese message (what was checked, the likely mistake).
    An IPython traceback quotes the source lines around the failing assert, which would show the
    hidden tests' code and values to students; the autograded notebooks keep the full traceback
    for instructors.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
