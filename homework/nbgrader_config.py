"""nbgrader settings of the course homework (run nbgrader from this folder: `cd homework`).

source/<assignment>/  the solution notebooks, each paired with a jupytext .py (edit either, then
                      `jupytext --sync`); solution regions are marked ### BEGIN/END SOLUTION.
release/<assignment>/ the exercise notebooks handed out, made by `make exercises`
                      (nbgrader generate_assignment); committed, and tests/test_homework.py checks
                      that they are up to date.
"""
c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "kd-notebooks"
c.CourseDirectory.assignment_id = ""
# The .py files in source/ are the jupytext twins of the solution notebooks: never release them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "*.py"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Autograde runs each cell with this limit (nbgrader's default is 30 s). hw2 loads MNIST and the
# teacher of notebook 02; a missing teacher checkpoint is trained there first (minutes, once).
c.Execute.timeout = 900
