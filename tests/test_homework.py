"""The homework (homework/): exercises generated from the solutions with nbgrader, and the checks
(kdlib.checks) that students run and instructors grade with.

1. the committed exercises (homework/release) are what nbgrader makes from the solutions now;
2. every check passes on the solution notebooks and fails on the exercise notebooks' stubs;
3. each check rejects the typical wrong implementations with the message meant for them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from kdlib import checks, losses

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "homework"
ASSIGNMENTS = sorted(p.name for p in (HW / "source").iterdir() if p.is_dir())
BIN = Path(sys.executable).parent


def _notebook(assignment: str, kind: str) -> Path:
    return HW / kind / assignment / f"{assignment}.ipynb"


def _cells(nb) -> list[tuple]:
    """What an exercise is made of: cell type, source and nbgrader metadata of each cell."""
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def _grade_id(cell) -> str | None:
    meta = cell.metadata.get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def test_assignments_exist():
    assert ASSIGNMENTS == ["hw1_soft_targets", "hw2_noisy_teacher_step"]


# ---- 1. the exercises are up to date -----------------------------------------------------------

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The release folder nbgrader makes now from homework/source (in a scratch course folder)."""
    nbgrader = BIN / "nbgrader"
    if not nbgrader.exists():
        pytest.skip("nbgrader is not installed (pip install -e '.[dev]')")
    course = tmp_path_factory.mktemp("course")
    shutil.copy(HW / "nbgrader_config.py", course)
    shutil.copytree(HW / "source", course / "source")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for a in ASSIGNMENTS:
        subprocess.run([str(nbgrader), "generate_assignment", a, "--no-db", "--force",
                        "--log-level=WARN"], cwd=course, env=env, check=True,
                       capture_output=True, text=True)
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
    solution_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solution_cells and all("raise NotImplementedError()" in c.source for c in solution_cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


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
    nb = _execute(_notebook(assignment, "source"), allow_errors=False)
    graded = [c for c in nb.cells if _grade_id(c)]
    assert len(graded) >= 3
    for cell in graded:
        if "checks.check_" in cell.source:
            assert "✓" in _text(cell), f"{_grade_id(cell)} printed no ✓: {_text(cell)!r}"


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
            if "checks.check_" in cell.source:
                assert "✓" not in _text(cell)
        else:
            assert not errors, f"cell {cell.source[:60]!r} failed: {errors}"


def test_autograde_grades_a_submission(tmp_path):
    """The instructors' route (README): nbgrader autograde + export. A hw1 submission with alpha on
    the wrong term earns the points of the two checks it passes (2 + 3), not those of the third."""
    nbgrader = BIN / "nbgrader"
    if not nbgrader.exists():
        pytest.skip("nbgrader is not installed (pip install -e '.[dev]')")
    a = "hw1_soft_targets"
    shutil.copy(HW / "nbgrader_config.py", tmp_path)
    shutil.copytree(HW / "source" / a, tmp_path / "source" / a)
    nb = nbformat.read(_notebook(a, "source"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "distillation_loss")
    assert "return alpha * soft + (1 - alpha) * hard" in cell.source
    cell.source = cell.source.replace("alpha * soft + (1 - alpha) * hard", "(1 - alpha) * soft + alpha * hard")
    (tmp_path / "submitted" / "bob" / a).mkdir(parents=True)
    nbformat.write(nb, tmp_path / "submitted" / "bob" / a / f"{a}.ipynb")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for cmd in (["generate_assignment", a, "--force"], ["autograde", a], ["export"]):
        subprocess.run([str(nbgrader), *cmd, "--log-level=WARN"], cwd=tmp_path, env=env,
                       check=True, capture_output=True, text=True)
    import csv
    rows = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert (float(rows["bob"]["score"]), float(rows["bob"]["max_score"])) == (5, 8)


# ---- 3. each check names the typical mistakes ----------------------------------------------------

ls = F.log_softmax


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
        raise ValueError(kind)
    return fn


def _step(kind):
    def fn(model, opt, x, y, v, T, alpha):
        logits = model(x)
        if kind == "cross-entropy":
            loss = F.cross_entropy(logits, y)
        elif kind == "alpha swapped":
            loss = losses.distillation_loss(logits, v, y, T, 1 - alpha)
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
        return None if kind == "no return" else loss.item()
    return fn


def _right_step(model, opt, x, y, v, T, alpha):
    return _step("right")(model, opt, x, y, v, T, alpha)


S, CE = losses.soft_target_loss, F.cross_entropy

WRONG = {
    # softmax with temperature
    "softmax without /T": (checks.check_softmax_t, lambda z, T: torch.softmax(z, -1), "do not depend on T"),
    "softmax over dim 0": (checks.check_softmax_t, lambda z, T: torch.softmax(z / T, 0), "wrong dimension"),
    "softmax times T": (checks.check_softmax_t, lambda z, T: torch.softmax(z * T, -1), "multiplied the logits by T"),
    "exp not normalised": (checks.check_softmax_t, lambda z, T: torch.exp(z / T), "must sum to 1"),
    "naive exp overflows": (checks.check_softmax_t, _naive_softmax, "overflows"),
    "softmax in place": (checks.check_softmax_t, lambda z, T: z.div_(T).softmax(-1), "changed the logits"),
    "softmax returns None": (checks.check_softmax_t, lambda z, T: None, "forget `return`"),
    "softmax stub": (checks.check_softmax_t, _stub, "not written yet"),
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
                      lambda z, v, T: torch.tensor(S(z, v, T).item()), "no gradient"),
    # distillation loss
    "alpha on the hard term": (checks.check_distillation_loss,
                               lambda z, v, y, T, a: a * CE(z, y) + (1 - a) * S(z, v, T),
                               "alpha weights the wrong term"),
    "distillation without T^2": (checks.check_distillation_loss,
                                 lambda z, v, y, T, a: a * S(z, v, T) / T**2 + (1 - a) * CE(z, y),
                                 "soft term lacks T^2"),
    "no 1 - alpha": (checks.check_distillation_loss,
                     lambda z, v, y, T, a: a * S(z, v, T) + CE(z, y), "(1 - alpha)"),
    "hard term at T": (checks.check_distillation_loss,
                       lambda z, v, y, T, a: a * S(z, v, T) + (1 - a) * CE(z / T, y), "plain logits"),
    "cross-entropy on probabilities": (checks.check_distillation_loss,
                                       lambda z, v, y, T, a: a * S(z, v, T) + (1 - a) * CE(F.softmax(z, 1), y),
                                       "takes raw logits"),
    "distillation stub": (checks.check_distillation_loss, _stub, "not written yet"),
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
    # training step
    "no zero_grad": (checks.check_training_step, _step("no zero_grad"), "did not call optimizer.zero_grad()"),
    "zero_grad after backward": (checks.check_training_step, _step("zero_grad after backward"),
                                 "did not change the weights"),
    "no optimizer.step": (checks.check_training_step, _step("no step"), "call optimizer.step()"),
    "step on cross-entropy": (checks.check_training_step, _step("cross-entropy"), "cross-entropy with the labels only"),
    "step with alpha swapped": (checks.check_training_step, _step("alpha swapped"), "alpha weights the wrong term"),
    "step returns nothing": (checks.check_training_step, _step("no return"), "return the loss"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.filterwarnings("ignore:reduction:UserWarning")
def test_check_names_the_mistake(case):
    check, fn, message = WRONG[case]
    with pytest.raises(checks.CheckFailed) as err:
        check(fn)
    assert message in str(err.value), f"{case}: got {err.value}"
    assert isinstance(err.value, AssertionError)


@pytest.mark.parametrize("check, fn", [
    (checks.check_softmax_t, losses.softmax_t),
    (checks.check_softmax_t, lambda z, T: torch.softmax(z / T, dim=1)),
    (checks.check_soft_target_loss, losses.soft_target_loss),
    (checks.check_soft_target_loss,  # probabilities as target is as right as log_target=True
     lambda z, v, T: F.kl_div(ls(z / T, 1), F.softmax(v / T, 1), reduction="batchmean") * T**2),
    (checks.check_distillation_loss, losses.distillation_loss),
    (checks.check_perturb_logits, losses.perturb_logits),
    (checks.check_training_step, _right_step),
], ids=["softmax_t", "softmax dim=1", "soft_target_loss", "soft target as probabilities",
        "distillation_loss", "perturb_logits", "training step"])
def test_check_accepts_right_answers(check, fn, capsys):
    check(fn)
    assert capsys.readouterr().out.startswith("✓ ")


def test_error_in_students_function_is_kept_as_the_cause():
    with pytest.raises(checks.CheckFailed, match="softmax_t raised IndexError") as err:
        checks.check_softmax_t(lambda z, T: z.softmax(dim=2))
    assert isinstance(err.value.__cause__, IndexError)
