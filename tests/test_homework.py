"""The homework (homework/): exercises generated from the solutions with nbgrader, and the checks
(kdlib.homework) that students run and instructors grade with.

1. the committed exercises (homework/release) are what nbgrader makes from the solutions now, and
   hold neither the solutions nor the hidden tests;
2. every check passes on the solution notebooks (hidden tests included) and fails on the exercise
   notebooks' stubs; nbgrader's autograde runs the hidden tests on a student's notebook;
3. each check rejects the typical wrong implementations with the message meant for them, refuses
   a function that calls kdlib's own implementation, and stops a function that never returns.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from kdlib import homework as checks
from kdlib import hinton, losses, train
from kdlib.losses import soft_target_loss as borrowed_soft_target_loss

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "homework"
ASSIGNMENTS = sorted(p.name for p in (HW / "source").iterdir() if p.is_dir())
BIN = Path(sys.executable).parent
NBGRADER = BIN / "nbgrader"


def _notebook(assignment: str, kind: str) -> Path:
    return HW / kind / assignment / f"{assignment}.ipynb"


def _cells(nb) -> list[tuple]:
    """What an exercise is made of: cell type, source and nbgrader metadata of each cell."""
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def _grade_id(cell) -> str | None:
    meta = cell.metadata.get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def _calls_a_check(cell) -> bool:
    return "checks.check_" in cell.source


def test_assignments_exist():
    assert {"hw1_soft_targets", "hw2_noisy_teacher_step"} <= set(ASSIGNMENTS)


def _nbgrader(course: Path, *commands: list[str], submissions: dict | None = None,
              config: str = "") -> Path:
    """Run nbgrader ``commands`` (e.g. ["autograde", "hw1_soft_targets"]) in a scratch course
    folder made of homework's config (with ``config`` appended), its sources and ``submissions``
    ({(student, assignment): notebook}); returns the folder. nbgrader's warnings and errors are
    in its ``log.txt``."""
    if not NBGRADER.exists():
        pytest.skip("nbgrader is not installed (pip install -e '.[dev]')")
    if not (course / "nbgrader_config.py").exists():
        (course / "nbgrader_config.py").write_text((HW / "nbgrader_config.py").read_text() + config)
        shutil.copytree(HW / "source", course / "source")
    for (student, a), nb in (submissions or {}).items():
        (course / "submitted" / student / a).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / a / f"{a}.ipynb")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for cmd in commands:
        r = subprocess.run([str(NBGRADER), *cmd, "--log-level=WARN"], cwd=course, env=env,
                           capture_output=True, text=True)
        with open(course / "log.txt", "a") as log:
            log.write(r.stdout + r.stderr)
        assert r.returncode == 0, r.stdout + r.stderr
    return course


# ---- 1. the exercises are up to date -----------------------------------------------------------

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The release folder nbgrader makes now from homework/source (in a scratch course folder)."""
    course = _nbgrader(tmp_path_factory.mktemp("course"),
                       *(["generate_assignment", a, "--no-db", "--force"] for a in ASSIGNMENTS))
    return course / "release"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_py_and_ipynb_agree(assignment):
    """Each solution notebook and its jupytext .py twin hold the same cells (jupytext --sync)."""
    import jupytext

    ipynb = _notebook(assignment, "source")
    py = jupytext.read(ipynb.with_suffix(".py"))
    assert _cells(py) == _cells(nbformat.read(ipynb, as_version=4)), (
        f"{ipynb.name} and its .py differ: run `jupytext --sync {ipynb.relative_to(ROOT)}`")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_up_to_date(regenerated, assignment):
    committed = HW / "release" / assignment
    fresh = regenerated / assignment
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in fresh.iterdir())
    for path in fresh.iterdir():
        assert _cells(nbformat.read(committed / path.name, as_version=4)) == \
            _cells(nbformat.read(path, as_version=4)), (
            f"homework/release/{assignment}/{path.name} is out of date: run `make exercises`")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution(assignment):
    folder = HW / "release" / assignment
    assert [p.name for p in folder.iterdir()] == [f"{assignment}.ipynb"]  # no .py twin (solutions)
    nb = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text  # the hidden tests stay hidden
    solution_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solution_cells and all("raise NotImplementedError()" in c.source for c in solution_cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_check_cell_has_hidden_tests(assignment):
    """In the solutions, each graded check cell holds an nbgrader hidden-test region that runs the
    check again on other inputs; the release has the same cell without it."""
    nb = nbformat.read(_notebook(assignment, "source"), as_version=4)
    release = {_grade_id(c): c for c in nbformat.read(_notebook(assignment, "release"),
                                                      as_version=4).cells if _grade_id(c)}
    cells = [c for c in nb.cells if _grade_id(c) and _calls_a_check(c)]
    assert len(cells) >= 2
    for cell in cells:
        visible, begin, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
        hidden, end, after = rest.partition("### END HIDDEN TESTS")
        assert begin and end and not after.strip(), f"{_grade_id(cell)}: no hidden-test region"
        assert "checks.check_" in hidden, f"{_grade_id(cell)}: the hidden tests call no check"
        assert release[_grade_id(cell)].source.strip() == visible.strip()


# ---- 2. checks pass on the solutions and fail on the stubs -------------------------------------

def _execute(path: Path, allow_errors: bool):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _errors(cell) -> list[str]:
    return [o.ename for o in cell.get("outputs", []) if o.output_type == "error"]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


@pytest.fixture
def notebook_env(real_data, monkeypatch):
    """Real MNIST (homework 2 uses it) and fast mode (a missing teacher trains briefly)."""
    monkeypatch.setenv("KDLIB_FAST", "1")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_pass_every_check(notebook_env, assignment):
    """Every graded cell runs; each check in it, the hidden ones included, prints its ✓."""
    nb = _execute(_notebook(assignment, "source"), allow_errors=False)
    graded = [c for c in nb.cells if _grade_id(c)]
    assert len(graded) >= 3
    for cell in graded:
        if _calls_a_check(cell):
            assert _text(cell).count("✓") == cell.source.count("checks.check_"), (
                f"{_grade_id(cell)}: not every check printed its ✓: {_text(cell)!r}")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_fail_every_check(notebook_env, assignment):
    """Unsolved, every graded cell fails (on the stub or with the check's message); every other
    cell (imports, data) runs."""
    nb = _execute(_notebook(assignment, "release"), allow_errors=True)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = _errors(cell)
        if _grade_id(cell):
            assert errors and errors[0] in ("CheckFailed", "NotImplementedError"), (
                f"graded cell {_grade_id(cell)} did not fail on the stubs: {errors}")
            if _calls_a_check(cell):
                assert "✓" not in _text(cell)
        else:
            assert not errors, f"cell {cell.source[:60]!r} failed: {errors}"


def _submission(assignment: str, *edits: tuple[str, str]):
    """A student's notebook: the exercise (no hidden tests) with every stub replaced by the
    solution, written as a student would (without the solution markers), then ``edits``
    (old, new) applied to its code."""
    source = {c.metadata["nbgrader"]["grade_id"]: c.source
              for c in nbformat.read(_notebook(assignment, "source"), as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(_notebook(assignment, "release"), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = "\n".join(line for line in source[meta["grade_id"]].splitlines()
                                    if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    for old, new in edits:
        cells = [c for c in nb.cells if old in c.source]
        assert len(cells) == 1, f"{old!r} is in {len(cells)} cells"
        cells[0].source = cells[0].source.replace(old, new)
    return nb


def test_autograde_grades_a_submission(tmp_path):
    """The instructors' route (README): nbgrader autograde + export, on students' notebooks made
    from the exercise. Alice's is right: all 8 points, hidden tests included. Bob's has alpha on
    the wrong term: the points of the two checks it passes (2 + 3). Carol's soft-target loss divides
    by a batch size of 8 written into the code: it passes the visible checks (batches of 8) but not
    the hidden tests (other batch sizes), which autograde puts back: 5 (the distillation loss that
    calls it is graded with kdlib's soft-target loss in its place, #23). Dave's soft-target loss
    lacks T^2: 5 likewise. Eve's softmax ignores T, and she replaced its check by a print:
    autograde puts the check back, and nbgrader warns about that cell, and only about it (not
    about the check cells of the others, which differ from the source only by the hidden tests).
    Frank's own cell loops forever: autograde stops that cell at its time limit (5 s here, for
    that cell only: a busy machine may take longer to import torch) and grades the rest."""
    import csv

    a = "hw1_soft_targets"
    submissions = {
        ("alice", a): _submission(a),
        ("bob", a): _submission(a, ("alpha * soft + (1 - alpha) * hard",
                                    "(1 - alpha) * soft + alpha * hard")),
        ("carol", a): _submission(a, ('reduction="batchmean", log_target=True) * T * T',
                                      'reduction="sum", log_target=True) / 8 * T * T')),
        ("dave", a): _submission(a, ('reduction="batchmean", log_target=True) * T * T',
                                     'reduction="batchmean", log_target=True)')),
        ("eve", a): _submission(a, ("z = logits / T", "z = logits"),
                                ("checks.check_softmax_t(softmax_t)", 'print("checked")')),
        ("frank", a): _submission(a, ("def distillation_loss(", "while True:\n    pass\n\ndef distillation_loss(")),
    }
    course = _nbgrader(tmp_path, ["generate_assignment", a, "--force"],
                       ["generate_assignment", "hw2_noisy_teacher_step", "--force"], ["autograde", a],
                       ["export", "--assignment", a], submissions=submissions,
                       config="\nc.Execute.timeout_func = lambda cell: 5 if 'while True' in cell.source "
                              "else cell_timeout(cell)\n")
    table = list(csv.DictReader(open(course / "grades.csv")))
    assert {r["assignment"] for r in table} == {a}  # export --assignment: hw2's empty rows left out
    rows = {r["student_id"]: r for r in table}
    scores = {s: (float(r["score"]), float(r["max_score"])) for s, r in rows.items()}
    assert scores == {"alice": (8, 8), "bob": (5, 8), "carol": (5, 8), "dave": (5, 8), "eve": (6, 8),
                      "frank": (5, 8)}
    log = (course / "log.txt").read_text()
    assert log.count("has changed") == 1, log
    assert "Attribute 'checksum' for cell check_softmax_t has changed" in log
    graded = nbformat.read(course / "autograded" / "frank" / a / f"{a}.ipynb", as_version=4)
    stopped = [c for c in graded.cells if "while True:" in c.source]
    assert _errors(stopped[0]) and _errors(stopped[0])[-1] in ("CellTimeoutError", "KeyboardInterrupt")


def test_nbgrader_config_time_limits():
    """Autograde's cell time limit (homework/nbgrader_config.py): the cell of hw2 that may train
    notebook 02's teacher gets the long limit, every other cell of every assignment the short one."""
    namespace = {"get_config": lambda: __import__("traitlets.config").config.Config()}
    exec(compile((HW / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"), namespace)
    cell_timeout, short, long = (namespace[k] for k in ("cell_timeout", "CELL_TIMEOUT", "TRAINS_ONCE_TIMEOUT"))
    assert namespace["c"].Execute.timeout_func is cell_timeout and 0 < short < long
    for assignment in ASSIGNMENTS:
        for cell in nbformat.read(_notebook(assignment, "source"), as_version=4).cells:
            expected = long if "mnist_teacher(" in cell.source else short
            assert cell_timeout(cell) == expected, cell.source[:80]
    trains = [c for c in nbformat.read(_notebook("hw2_noisy_teacher_step", "source"), as_version=4).cells
              if cell_timeout(c) == long]
    assert len(trains) == 1


# ---- 3. each check names the typical mistakes ----------------------------------------------------

ls, CE = F.log_softmax, F.cross_entropy

# Right answers written without kdlib (a check refuses kdlib's own implementation).


def _softmax(z, dim=-1):
    e = torch.exp(z - z.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim, keepdim=True)


def _softmax_t(z, T):
    return _softmax(z / T)


def _soft(z, v, T):
    return F.kl_div(ls(z / T, 1), ls(v / T, 1), reduction="batchmean", log_target=True) * T * T


def _distill(z, v, y, T, a):
    return a * _soft(z, v, T) + (1 - a) * CE(z, y)


def _naive_softmax(z, T):
    e = torch.exp(z / T)
    return e / e.sum(-1, keepdim=True)


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _kl(log_q, target, T, **kw):
    return F.kl_div(log_q, target, **kw) * T * T


def _perturb(kind):
    def fn(z, sigma, fraction, generator=None):
        n, c = z.shape
        chosen = torch.rand(n, generator=generator) < fraction
        xi = torch.randn(n, c, generator=generator) * sigma
        if kind == "right":
            return torch.where(chosen[:, None], z * (1 + xi), z)
        if kind == "added":
            return torch.where(chosen[:, None], z + xi, z)
        if kind == "z*xi":
            return torch.where(chosen[:, None], z * xi, z)
        if kind == "variance":
            return torch.where(chosen[:, None], z * (1 + xi * sigma), z)
        if kind == "per-row":
            return torch.where(chosen[:, None], z * (1 + xi[:, :1]), z)
        if kind == "per-logit choice":
            return torch.where(torch.rand(n, c, generator=generator) < fraction, z * (1 + xi), z)
        if kind == "every row":
            return z * (1 + xi)
        if kind == ">":
            return torch.where((torch.rand(n, generator=generator) > fraction)[:, None], z * (1 + xi), z)
        if kind == "no generator":
            return torch.where((torch.rand(n) < fraction)[:, None], z * (1 + torch.randn(n, c) * sigma), z)
        if kind == "in place":
            z[chosen] *= 1 + xi[chosen]
            return z
        if kind == "uniform":
            u = (torch.rand(n, c, generator=generator) * 2 - 1) * sigma * 3 ** 0.5
            return torch.where(chosen[:, None], z * (1 + u), z)
        if kind == "relative, 0/0":  # z * (z + z * xi) / z: nan where a logit is 0
            return torch.where(chosen[:, None], z * (z + z * xi) / z, z)
        raise ValueError(kind)
    return fn


def _step(kind):
    def fn(model, opt, x, y, v, T, alpha):
        if kind == "x in place":
            x /= 2
        logits = model(x)
        if kind == "cross-entropy":
            loss = F.cross_entropy(logits, y)
        elif kind == "alpha swapped":
            loss = losses.distillation_loss(logits, v, y, T, 1 - alpha)
        elif kind == "kdlib's soft_target_loss":
            loss = alpha * losses.soft_target_loss(logits, v, T) + (1 - alpha) * CE(logits, y)
        elif kind == "kdlib's train_epoch":
            return train.train_epoch(model, opt, train.Batches(x, y, v, batch_size=len(y)),
                                     loss_fn=hinton.kd_loss(T, alpha))[0]
        else:
            loss = losses.distillation_loss(logits, v, y, T, alpha)
        if kind == "no zero_grad":
            loss.backward()
            opt.step()
        elif kind == "zero_grad after backward":
            loss.backward()
            opt.zero_grad()
            opt.step()
        elif kind == "no step":
            opt.zero_grad()
            loss.backward()
        else:
            opt.zero_grad()
            loss.backward()
            opt.step()
        if kind == "teacher_logits in place":
            v.mul_(2)
        return {"no return": None, "twice the loss": 2 * loss.item(),
                "nan": float("nan")}.get(kind, loss.item())
    return fn


def _right_step(model, opt, x, y, v, T, alpha):
    return _step("right")(model, opt, x, y, v, T, alpha)


def _float_when_grad(loss):
    """Right on the first calls; a Python float on the check's later call with gradients."""
    def fn(z, *args):
        out = loss(z, *args)
        return out.item() if z.requires_grad else out
    return fn


NAN = torch.tensor(float("nan"))


def _flat(message) -> str:
    """A check's message on one line (checks wrap theirs at 100 columns)."""
    return " ".join(str(message).split())


def _scipy_softmax(z, T):  # SciPy's softmax on .numpy(): right values, no gradient
    from scipy.special import softmax

    return torch.from_numpy(softmax(z.numpy() / T, axis=-1))


def _scipy_softmax_detached(z, T):
    from scipy.special import softmax

    return torch.from_numpy(softmax(z.detach().numpy() / T, axis=-1))


def _straight_through_softmax(z, T):  # SciPy's values with the identity's gradient
    return z - z.detach() + _scipy_softmax_detached(z, T)

WRONG = {
    # softmax with temperature
    "softmax without /T": (checks.check_softmax_t, lambda z, T: _softmax(z), "do not depend on T"),
    "softmax over dim 0": (checks.check_softmax_t, lambda z, T: _softmax(z / T, 0), "wrong dimension"),
    "softmax times T": (checks.check_softmax_t, lambda z, T: _softmax(z * T), "multiplied the logits by T"),
    "exp not normalised": (checks.check_softmax_t, lambda z, T: torch.exp(z / T), "must sum to 1"),
    "naive exp overflows": (checks.check_softmax_t, _naive_softmax, "overflows"),
    "softmax in place": (checks.check_softmax_t, lambda z, T: _softmax(z.div_(T)), "changed the logits"),
    "softmax returns None": (checks.check_softmax_t, lambda z, T: None, "forget `return`"),
    "softmax None at large logits": (checks.check_softmax_t,
                                     lambda z, T: None if z.abs().max() > 100 else _softmax_t(z, T),
                                     "forget `return`"),
    "softmax nan": (checks.check_softmax_t, lambda z, T: _softmax_t(z, T) * NAN,
                    "at T=1 your softmax_t returned nan"),
    "softmax stub": (checks.check_softmax_t, _stub, "not written yet"),
    "torch.softmax": (checks.check_softmax_t, lambda z, T: torch.softmax(z / T, -1), "calls torch's softmax"),
    "F.softmax": (checks.check_softmax_t, lambda z, T: F.softmax(z / T, dim=1), "calls torch's softmax"),
    "Tensor.softmax": (checks.check_softmax_t, lambda z, T: (z / T).softmax(-1), "calls torch's softmax"),
    "exp of log_softmax": (checks.check_softmax_t, lambda z, T: torch.exp(F.log_softmax(z / T, -1)),
                           "calls torch's softmax"),
    "aten softmax operator": (checks.check_softmax_t, lambda z, T: torch.ops.aten.softmax.int(z / T, -1),
                              "calls torch's softmax"),
    "aten _softmax operator": (checks.check_softmax_t,
                               lambda z, T: torch.ops.aten._softmax.default(z / T, -1, False),
                               "calls torch's softmax"),
    "torch.sparse.softmax": (checks.check_softmax_t,
                             lambda z, T: torch.sparse.softmax((z / T).to_sparse(), -1).to_dense(),
                             "calls torch's softmax"),
    "nn.Softmax": (checks.check_softmax_t, lambda z, T: torch.nn.Softmax(-1)(z / T), "calls torch's softmax"),
    "SciPy's softmax on .numpy()": (checks.check_softmax_t, _scipy_softmax, "carries no gradient"),
    "SciPy's softmax on .detach().numpy()": (checks.check_softmax_t, _scipy_softmax_detached,
                                             "carries no gradient"),
    "SciPy's softmax with the identity's gradient": (checks.check_softmax_t, _straight_through_softmax,
                                                     "not their gradient"),
    "kdlib's softmax_t": (checks.check_softmax_t, losses.softmax_t,
                          "your softmax_t calls kdlib.losses.softmax_t: write it yourself"),
    # soft-target loss
    "no T^2": (checks.check_soft_target_loss,
               lambda z, v, T: _kl(ls(z / T, 1), F.softmax(v / T, 1), 1, reduction="batchmean"),
               "does not scale with T^2"),
    "reduction mean": (checks.check_soft_target_loss,
                       lambda z, v, T: _kl(ls(z / T, 1), F.softmax(v / T, 1), T, reduction="mean"),
                       "10x too small: did you use reduction='mean' instead of 'batchmean'"),
    "reduction sum": (checks.check_soft_target_loss,
                      lambda z, v, T: _kl(ls(z / T, 1), F.softmax(v / T, 1), T, reduction="sum"),
                      "reduction='sum'"),
    "reduction none": (checks.check_soft_target_loss,
                       lambda z, v, T: _kl(ls(z / T, 1), F.softmax(v / T, 1), T, reduction="none"),
                       "reduction='none'"),
    "log of softmax": (checks.check_soft_target_loss,
                       lambda z, v, T: _kl(torch.log(F.softmax(z / T, 1)), F.softmax(v / T, 1), T,
                                           reduction="batchmean"),
                       "Use F.log_softmax"),
    "KL swapped": (checks.check_soft_target_loss,
                   lambda z, v, T: _kl(ls(v / T, 1), F.softmax(z / T, 1), T, reduction="batchmean"),
                   "KL(q || p)"),
    "log target without flag": (checks.check_soft_target_loss,
                                lambda z, v, T: _kl(ls(z / T, 1), ls(v / T, 1), T, reduction="batchmean"),
                                "without log_target=True"),
    "probabilities as input": (checks.check_soft_target_loss,
                               lambda z, v, T: _kl(F.softmax(z / T, 1), F.softmax(v / T, 1), T,
                                                   reduction="batchmean"),
                               "must be log-probabilities"),
    "softmax over the batch": (checks.check_soft_target_loss,
                               lambda z, v, T: _kl(ls(z / T, 0), ls(v / T, 0), T,
                                                   reduction="batchmean", log_target=True),
                               "batch dimension"),
    "cross-entropy not KL": (checks.check_soft_target_loss,
                             lambda z, v, T: -(F.softmax(v / T, 1) * ls(z / T, 1)).sum(1).mean() * T * T,
                             "not the KL divergence"),
    "detached loss": (checks.check_soft_target_loss,
                      lambda z, v, T: torch.tensor(_soft(z, v, T).item()), "no gradient"),
    "soft-target loss nan": (checks.check_soft_target_loss, lambda z, v, T: _soft(z, v, T) * NAN,
                             "at T=1 your soft_target_loss returned nan (not a number)"),
    "soft-target loss as a float later": (checks.check_soft_target_loss, _float_when_grad(_soft),
                                          "returned a Python float"),
    "soft-target loss None at large logits": (
        checks.check_soft_target_loss,
        lambda z, v, T: None if z.abs().max() > 100 else _soft(z, v, T), "forget `return`"),
    "kdlib's soft_target_loss": (checks.check_soft_target_loss, losses.soft_target_loss,
                                 "calls kdlib.losses.soft_target_loss: write it yourself"),
    "kdlib's soft_target_loss, imported by another name": (
        checks.check_soft_target_loss, lambda z, v, T: borrowed_soft_target_loss(z, v, T),
        "calls kdlib.losses.soft_target_loss: write it yourself"),
    # distillation loss
    "alpha on the hard term": (checks.check_distillation_loss,
                               lambda z, v, y, T, a: a * CE(z, y) + (1 - a) * _soft(z, v, T),
                               "alpha weights the wrong term"),
    "distillation without T^2": (checks.check_distillation_loss,
                                 lambda z, v, y, T, a: a * _soft(z, v, T) / T**2 + (1 - a) * CE(z, y),
                                 "soft term lacks T^2"),
    "no 1 - alpha": (checks.check_distillation_loss,
                     lambda z, v, y, T, a: a * _soft(z, v, T) + CE(z, y), "(1 - alpha)"),
    "hard term at T": (checks.check_distillation_loss,
                       lambda z, v, y, T, a: a * _soft(z, v, T) + (1 - a) * CE(z / T, y), "plain logits"),
    "cross-entropy on probabilities": (checks.check_distillation_loss,
                                       lambda z, v, y, T, a: a * _soft(z, v, T) + (1 - a) * CE(F.softmax(z, 1), y),
                                       "takes raw logits"),
    "distillation nan": (checks.check_distillation_loss, lambda z, v, y, T, a: _distill(z, v, y, T, a) * NAN,
                         "at T=2, alpha=0.8 your distillation_loss returned nan"),
    "distillation as a float later": (checks.check_distillation_loss, _float_when_grad(_distill),
                                      "returned a Python float"),
    "labels changed": (checks.check_distillation_loss,
                       lambda z, v, y, T, a: _distill(z, v, y.fill_(0), T, a), "changed the labels"),
    "distillation stub": (checks.check_distillation_loss, _stub, "not written yet"),
    "kdlib's distillation_loss": (checks.check_distillation_loss, losses.distillation_loss,
                                  "calls kdlib.losses.distillation_loss: write it yourself"),
    "kdlib's distillation_loss through another kdlib helper": (
        checks.check_distillation_loss,
        lambda z, v, y, T, a: hinton.kd_loss(T, a)(z, y, v),
        "calls kdlib.losses.distillation_loss"),
    # noisy teacher
    "noise added": (checks.check_perturb_logits, _perturb("added"), "added instead of multiplied"),
    "z * xi": (checks.check_perturb_logits, _perturb("z*xi"), "not z * xi"),
    "sigma^2 as std": (checks.check_perturb_logits, _perturb("variance"), "= sigma^2"),
    "one xi per row": (checks.check_perturb_logits, _perturb("per-row"), "per logit"),
    "logits chosen one by one": (checks.check_perturb_logits, _perturb("per-logit choice"),
                                 "Rows that were not chosen must be unchanged"),
    "every row perturbed": (checks.check_perturb_logits, _perturb("every row"), "no row may change"),
    "rand > fraction": (checks.check_perturb_logits, _perturb(">"), "< fraction"),
    "generator ignored": (checks.check_perturb_logits, _perturb("no generator"), "pass generator=generator"),
    "perturbed in place": (checks.check_perturb_logits, _perturb("in place"), "changed the logits"),
    "uniform noise": (checks.check_perturb_logits, _perturb("uniform"), "Gaussian"),
    "perturbation gives nan": (checks.check_perturb_logits, _perturb("relative, 0/0"),
                               "your perturb_logits returned nan (not a number) in"),
    "kdlib's perturb_logits": (checks.check_perturb_logits, losses.perturb_logits,
                               "calls kdlib.losses.perturb_logits: write it yourself"),
    # training step
    "no zero_grad": (checks.check_training_step, _step("no zero_grad"), "did not call optimizer.zero_grad()"),
    "zero_grad after backward": (checks.check_training_step, _step("zero_grad after backward"),
                                 "did not change the weights"),
    "no optimizer.step": (checks.check_training_step, _step("no step"), "call optimizer.step()"),
    "step on cross-entropy": (checks.check_training_step, _step("cross-entropy"), "cross-entropy with the labels only"),
    "step with alpha swapped": (checks.check_training_step, _step("alpha swapped"), "alpha weights the wrong term"),
    "step returns nothing": (checks.check_training_step, _step("no return"), "return the loss"),
    "step returns twice the loss": (checks.check_training_step, _step("twice the loss"),
                                    "before the step, distillation_loss(model(x)"),
    "step returns nan": (checks.check_training_step, _step("nan"), "your distillation_step returned nan"),
    "step changes x": (checks.check_training_step, _step("x in place"),
                       "distillation_step changed the x it was given"),
    "step changes the teacher's logits": (checks.check_training_step, _step("teacher_logits in place"),
                                          "changed the teacher_logits"),
    "step with kdlib's soft_target_loss": (
        checks.check_training_step, _step("kdlib's soft_target_loss"),
        "calls kdlib.losses.soft_target_loss: write it yourself. The check compares your function "
        "with kdlib's, so calling kdlib's own implementation proves nothing (here you may use only "
        "`kdlib.losses.distillation_loss` from kdlib)."),
    "step with kdlib's train_epoch": (checks.check_training_step, _step("kdlib's train_epoch"),
                                      "calls kdlib.train.train_epoch"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.filterwarnings("ignore:reduction:UserWarning")
@pytest.mark.filterwarnings("error::UserWarning:kdlib")  # a check itself warns nobody
def test_check_names_the_mistake(case):
    names_the_mistake(*WRONG[case])


def names_the_mistake(check, fn, message: str) -> None:
    """``check(fn)`` fails with ``message`` in its text, wrapped to fit nbgrader's feedback page, which does not
    wrap: "CheckFailed: " + 87 columns, then 100 (a word longer than that would stay whole: none is)."""
    with pytest.raises(checks.CheckFailed) as err:
        check(fn)
    assert message in _flat(err.value), f"got {err.value}"
    assert isinstance(err.value, AssertionError)
    lines = f"CheckFailed: {err.value}".splitlines()
    assert max(len(line) for line in lines) <= 100, lines


def accepts_on_two_inputs(check, fn, capsys) -> None:
    """``check(fn)`` passes on its default inputs and on another seed's, printing its ✓ both times."""
    check(fn)
    check(fn, seed=21)
    assert capsys.readouterr().out.count("✓") == 2


def autograde_scores(tmp_path, assignment: str, submissions: dict) -> dict:
    """nbgrader generate_assignment, autograde and export, hidden tests included, on the students' notebooks
    ``{student: edits to the solution}`` (:func:`_submission`); returns ``{student: (score, max_score)}``."""
    import csv

    subs = {(student, assignment): _submission(assignment, *edits) for student, edits in submissions.items()}
    course = _nbgrader(tmp_path, ["generate_assignment", assignment, "--force"], ["autograde", assignment],
                       ["export"], submissions=subs)
    return {r["student_id"]: (float(r["score"]), float(r["max_score"]))
            for r in csv.DictReader(open(course / "grades.csv")) if r["assignment"] == assignment}


@pytest.mark.parametrize("case", ["soft-target loss nan", "perturbation gives nan", "distillation nan"])
def test_nan_is_named_as_nan(case):
    """A nan is reported as a nan, not as the mistake whose formula also gives nan (log_target) or
    as rows that changed (fraction)."""
    check, fn, _ = WRONG[case]
    with pytest.raises(checks.CheckFailed) as err:
        check(fn)
    assert "returned nan" in str(err.value)[:60]
    assert "no row may change" not in str(err.value) and "fraction=0 no row" not in str(err.value)


RIGHT = {
    "softmax_t": (checks.check_softmax_t, _softmax_t),
    "softmax dim=1": (checks.check_softmax_t, lambda z, T: _softmax(z / T, dim=1)),
    "softmax_t, hidden-test settings": (
        functools.partial(checks.check_softmax_t, shape=(64, 100), temperatures=(0.25, 100.0), seed=5),
        _softmax_t),
    "soft_target_loss": (checks.check_soft_target_loss, _soft),
    # probabilities as target is as right as log_target=True
    "soft target as probabilities": (
        checks.check_soft_target_loss,
        lambda z, v, T: F.kl_div(ls(z / T, 1), F.softmax(v / T, 1), reduction="batchmean") * T**2),
    "soft_target_loss, hidden-test settings": (
        functools.partial(checks.check_soft_target_loss, N=5, C=3, temperatures=(0.5, 8.0), seed=5),
        _soft),
    "distillation_loss": (checks.check_distillation_loss, _distill),
    "distillation_loss, hidden-test settings": (
        functools.partial(checks.check_distillation_loss, N=16, C=3, settings=((0.5, 0.9),), seed=5),
        _distill),
    "perturb_logits": (checks.check_perturb_logits, _perturb("right")),
    "perturb_logits, hidden-test settings": (
        functools.partial(checks.check_perturb_logits, sigma=0.5, fraction=0.7, seed=5), _perturb("right")),
    "training step": (checks.check_training_step, _right_step),
    "training step, other T and alpha": (
        functools.partial(checks.check_training_step, T=4.0, alpha=0.3), _right_step),
}


@pytest.mark.parametrize("case", sorted(RIGHT))
@pytest.mark.filterwarnings("error::UserWarning:kdlib")
def test_check_accepts_right_answers(case, capsys):
    check, fn = RIGHT[case]
    check(fn)
    assert capsys.readouterr().out.startswith("✓ ")


def test_error_in_students_function_is_kept_as_the_cause():
    with pytest.raises(checks.CheckFailed, match="softmax_t raised IndexError") as err:
        checks.check_softmax_t(lambda z, T: z.exp() / z.exp().sum(dim=2))
    assert isinstance(err.value.__cause__, IndexError)


# ---- 4. a function that never returns is stopped --------------------------------------------------

ENDLESS = """
from kdlib import homework

def softmax_t(logits, T):
    while True:
        pass

def stubborn(logits, T):  # an endless loop that swallows every Exception
    while True:
        try:
            logits = logits + 0
        except Exception:
            pass

for fn in (softmax_t, stubborn):
    try:
        homework.check_softmax_t(fn)
    except homework.CheckFailed as e:
        print("CheckFailed:", e)
"""


def test_endless_loop_is_stopped(tmp_path):
    """The check fails after the time limit instead of waiting forever (run in a subprocess with
    a timeout, so that this test cannot hang the suite on a check without a limit)."""
    import kdlib

    here = str(Path(kdlib.__file__).parents[1])  # the kdlib under test, wherever it is
    env = {**os.environ, "KDLIB_CHECK_TIME_LIMIT": "1",
           "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        r = subprocess.run([sys.executable, "-c", ENDLESS], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("a check of a function that never returns did not return either (no time limit)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("CheckFailed: softmax_t took longer than 1 second and was stopped: "
                          "probably an endless loop") == 2, r.stdout + r.stderr


def test_endless_loop_is_stopped_in_a_kernel(monkeypatch):
    """The same in a Jupyter kernel, where students run the checks (nbclient's cell timeout
    bounds the test)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    monkeypatch.setenv("KDLIB_CHECK_TIME_LIMIT", "2")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(ENDLESS.replace("for fn in (softmax_t, stubborn):", "for fn in ():")),
                nbformat.v4.new_code_cell("homework.check_softmax_t(softmax_t)")]
    try:
        NotebookClient(nb, timeout=90, kernel_name="python3", allow_errors=True).execute()
    except CellTimeoutError:
        pytest.fail("in a kernel, a check of a function that never returns did not return either")
    assert _errors(nb.cells[1]) == ["CheckFailed"]
    assert "took longer than 2 seconds" in nb.cells[1].outputs[-1].evalue


class _OuterAlarm(BaseException):
    pass


def test_time_limit_leaves_other_timers_alone():
    """A timer set before the check (e.g. pytest-timeout's) keeps its handler and its deadline: it
    is re-armed after the check, and fires in its own handler if it runs out first."""
    def outer(signum, frame):
        raise _OuterAlarm()

    def slow(z, T):
        time.sleep(3)
        return _softmax_t(z, T)

    old = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        checks.check_softmax_t(_softmax_t)
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 20 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(_OuterAlarm):
            checks.check_softmax_t(slow)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    checks.check_softmax_t(_softmax_t)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is old


def test_time_limit_leaves_other_timers_alone_also_after_a_stop(monkeypatch):
    """After stopping a function (and re-stopping it every tick), no timer is left running and
    SIGALRM's handler is the one from before."""
    monkeypatch.setenv("KDLIB_CHECK_TIME_LIMIT", "0.3")
    old = signal.getsignal(signal.SIGALRM)

    def endless(z, T):
        while True:
            try:
                z = z + 0
            except BaseException:
                continue

    with pytest.raises(checks.CheckFailed, match="took longer than 0.3 seconds"):
        checks.check_softmax_t(endless)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is old
    assert sys.getprofile() is None
    time.sleep(0.2)  # a tick left behind would raise here
    checks.check_softmax_t(_softmax_t)


# Loops that swallow the stop: the first two catch every exception, the time limit's included;
# the last catches it and then returns the right answer, too late.
STUBBORN = """
import time
import torch
from kdlib import homework

def bare_except(logits, T):
    n = 0
    while True:
        try:
            n += 1
            q = torch.exp(logits / T)
            q = q / q.sum(-1, keepdim=True)
        except:
            n -= 1

def sleeps_in_bare_except(logits, T):  # every stop lands in time.sleep, inside the try
    while True:
        try:
            time.sleep(0.01)
        except:
            pass

def except_base_exception(logits, T):
    while True:
        try:
            logits = logits + 0
        except BaseException:
            continue

def plain_loop(logits, T):
    while True:
        pass

def right_but_late(logits, T):
    try:
        while True:
            pass
    except BaseException:
        pass
    z = logits / T
    e = torch.exp(z - z.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)

for fn in (bare_except, sleeps_in_bare_except, except_base_exception, plain_loop, right_but_late):
    start = time.monotonic()
    try:
        homework.check_softmax_t(fn)
    except homework.CheckFailed as e:
        print(fn.__name__, f"{time.monotonic() - start:.1f}", " ".join(str(e).split()))
"""


def _run_script(script: str, limit: str, timeout: float = 90) -> str:
    """Run ``script`` in a fresh interpreter with KDLIB_CHECK_TIME_LIMIT=``limit`` (a subprocess
    with a timeout: a check that hangs cannot hang the suite); returns its output."""
    import kdlib

    here = str(Path(kdlib.__file__).parents[1])  # the kdlib under test, wherever it is
    env = {**os.environ, "KDLIB_CHECK_TIME_LIMIT": limit,
           "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the checks did not return within {timeout} s: {e.stdout}")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_time_limit_stops_loops_that_catch_every_exception():
    """#26: a bare `except:` or `except BaseException` in the student's loop swallowed the one
    alarm, and the check hung. The stop is repeated every tick until the function returns, and
    raised again at the first line of the except clause; a function that swallowed it and
    returned later fails on time all the same."""
    out = _run_script(STUBBORN, "1")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert sorted(lines) == sorted(["bare_except", "sleeps_in_bare_except", "except_base_exception",
                                    "plain_loop", "right_but_late"]), out
    for name, line in lines.items():
        _, seconds, message = line.split(" ", 2)
        assert message.startswith("softmax_t took longer than 1 second and was stopped"), line
        assert float(seconds) < 10, line  # stopped soon after the limit (generous: a busy machine)


CTRL_C = """
import os, signal, sys, threading, time
import torch
from kdlib import homework

def slow(logits, T):
    while True:
        time.sleep(0.01)

def deaf(logits, T):  # swallows Ctrl-C too
    while True:
        try:
            time.sleep(0.01)
        except:
            pass

for fn in (slow, deaf):
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        homework.check_softmax_t(fn)
    except KeyboardInterrupt:
        print(fn.__name__, "KeyboardInterrupt")
    except homework.CheckFailed as e:
        print(fn.__name__, "CheckFailed", str(e).split(":")[0])
    print(fn.__name__, "after", signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0),
          signal.getsignal(signal.SIGALRM) is signal.SIG_DFL, sys.getprofile() is None)
"""


def test_ctrl_c_during_a_check():
    """Ctrl-C (SIGINT, as Jupyter's interrupt sends) stops a check as it stops any code: a
    KeyboardInterrupt, not a CheckFailed, and no timer, handler or profile hook left behind. A
    function that swallows Ctrl-C is still stopped by the time limit."""
    out = _run_script(CTRL_C, "2").splitlines()
    assert out == ["slow KeyboardInterrupt", "slow after True True True",
                   "deaf CheckFailed softmax_t took longer than 2 seconds and was stopped",
                   "deaf after True True True"], out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e30", "-1", "1e-9", "ten", "10s"])
def test_time_limit_setting_is_validated(monkeypatch, value):
    """#26: a time limit of nan, inf or 1e30 made every check fail blaming the student
    ("softmax_t raised OverflowError"); a negative one meant none. Now a ValueError names the
    variable and the allowed range, before the student's function runs."""
    monkeypatch.setenv("KDLIB_CHECK_TIME_LIMIT", value)
    calls = []
    with pytest.raises(ValueError) as err:
        checks.check_softmax_t(lambda z, T: calls.append(1) or _softmax_t(z, T))
    assert not isinstance(err.value, checks.CheckFailed) and not calls
    assert str(err.value) == ("KDLIB_CHECK_TIME_LIMIT must be 0 (no time limit) or a number of "
                              f"seconds from 0.001 to 86400, got {value!r}")


@pytest.mark.parametrize("value", ["0", " 2.5 ", "86400", ""])
def test_time_limit_setting_accepts_numbers_in_range(monkeypatch, value, capsys):
    monkeypatch.setenv("KDLIB_CHECK_TIME_LIMIT", value)
    checks.check_softmax_t(_softmax_t)
    assert capsys.readouterr().out.startswith("✓ ")


# ---- 5. each function is graded on its own -------------------------------------------------------

STUDENT_NOTEBOOK = '''
import torch.nn.functional as F

def soft_target_loss(z, v, T):  # wrong: no T^2
    return F.kl_div(F.log_softmax(z / T, 1), F.log_softmax(v / T, 1), reduction="batchmean",
                    log_target=True)

def distillation_loss(z, v, y, T, alpha):  # right, given a right soft_target_loss
    return alpha * soft_target_loss(z, v, T) + (1 - alpha) * F.cross_entropy(z, y)

def distillation_alpha_swapped(z, v, y, T, alpha):
    return (1 - alpha) * soft_target_loss(z, v, T) + alpha * F.cross_entropy(z, y)
'''


def test_distillation_loss_is_graded_on_its_own(capsys):
    """#23: a wrong soft_target_loss cost the distillation-loss points too. The check puts kdlib's
    soft-target loss in place of the student's (in the student's namespace, during the check
    only): a right distillation_loss passes, a wrong one still fails with its own message."""
    ns = {}
    exec(STUDENT_NOTEBOOK, ns)
    own = ns["soft_target_loss"]
    with pytest.raises(checks.CheckFailed, match="does not scale with T"):
        checks.check_soft_target_loss(own)
    checks.check_distillation_loss(ns["distillation_loss"])
    assert "in place of your soft_target_loss" in _flat(capsys.readouterr().out)
    assert ns["soft_target_loss"] is own  # put back
    with pytest.raises(checks.CheckFailed, match="alpha weights the wrong term"):
        checks.check_distillation_loss(ns["distillation_alpha_swapped"])
    assert ns["soft_target_loss"] is own


def test_distillation_loss_calling_kdlibs_soft_target_loss_is_still_refused():
    """kdlib's soft_target_loss imported under the student's name is not swapped away: refused."""
    ns = {}
    exec(STUDENT_NOTEBOOK.replace("def soft_target_loss(z, v, T):  # wrong: no T^2\n",
                                  "from kdlib.losses import soft_target_loss\ndef _unused(z, v, T):\n"), ns)
    with pytest.raises(checks.CheckFailed) as err:
        checks.check_distillation_loss(ns["distillation_loss"])
    assert "calls kdlib.losses.soft_target_loss: write it yourself" in _flat(err.value)
