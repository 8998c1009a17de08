"""nbgrader settings of the course homework (run nbgrader from this folder: `cd homework`).

source/<assignment>/  the solution notebooks, each paired with a jupytext .py (edit either, then
                      `jupytext --sync`); solution regions are marked ### BEGIN/END SOLUTION.
release/<assignment>/ the exercise notebooks handed out, made by `make exercises`
                      (nbgrader generate_assignment); committed, and tests/test_homework.py checks
                      that they are up to date.
"""
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearOutput, DeduplicateIds,
                                    OverwriteCells, OverwriteKernelspec)

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "kd-notebooks"
c.CourseDirectory.assignment_id = ""
# The .py files in source/ are the jupytext twins of the solution notebooks: never release them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "*.py"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# ---- autograde's time limits -----------------------------------------------------------------------
# Autograde stops a cell that runs longer than its limit (an endless loop in the student's own
# code; a loop inside a check is stopped by the check's own limit, 10 s a call), records it as an
# error, interrupts the kernel and goes on with the next cell. Measured on 2 cores (README,
# Homework): a correct submission's whole autograde takes 9 s (hw1; 24 s at a load average of 8)
# and 16 s (hw2, teacher cached), its slowest cell 9 s (the imports, at a load average of 8);
# CELL_TIMEOUT leaves a wide margin for a busier machine. The cell that loads notebook 02's teacher
# trains it first when its checkpoint is missing: 378 s on a quiet machine, but still training
# when stopped at 900 s and at 1800 s at a load average of 7-13 here; that cell gets
# TRAINS_ONCE_TIMEOUT (on a busy machine, train the teacher before grading: README, Homework).
# To change a limit, edit the numbers here; 0 means none.
CELL_TIMEOUT = 120
TRAINS_ONCE_TIMEOUT = 3600
TRAINS_ONCE = ("recipes.mnist_teacher(",)
"""Calls that may train a model once (a cell holding one gets TRAINS_ONCE_TIMEOUT)."""


def cell_timeout(cell) -> int:
    """Seconds autograde lets ``cell`` run."""
    return TRAINS_ONCE_TIMEOUT if any(call in cell.source for call in TRAINS_ONCE) else CELL_TIMEOUT


c.Execute.timeout = CELL_TIMEOUT
c.Execute.timeout_func = cell_timeout


# ---- the hidden tests, put back without a warning ------------------------------------------------------

def released(source: str) -> str:
    """A cell's source as the students receive it: without its hidden-test region."""
    cell = NotebookNode(cell_type="code", source=source, metadata={})
    ClearHiddenTests()._remove_hidden_test_region(cell)
    return cell.source


class RestoreHiddenTests(OverwriteCells):
    """nbgrader's OverwriteCells (autograde puts the locked cells back from the source), quiet when
    a locked cell differs from the source only by the hidden tests that the release removed.

    nbgrader warns "Attribute 'checksum' for cell check_... has changed!" for every locked cell
    whose source differs from the source version, so for every check cell with hidden tests of
    every submission, an untouched one too. Here such a cell, when it is exactly the released one,
    gets the source version (hidden tests included) before nbgrader compares: no warning. A cell
    the student edited is restored as before, with nbgrader's warning."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and utils.is_locked(cell):
            try:
                source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source = None
            if (source is not None and source.locked and cell.cell_type == source.cell_type
                    and cell.source.strip() == released(source.source).strip()):
                cell.source = source.source
        return super().preprocess_cell(cell, resources, cell_index)


# nbgrader's own list, with RestoreHiddenTests in place of OverwriteCells.
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      RestoreHiddenTests, CheckCellMetadata]
