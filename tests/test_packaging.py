"""environment.yml (conda), binder/environment.yml and pyproject.toml (pip) name the same packages
with the same version limits, and claim the same oldest Python as the README and the Makefile."""
import re
import subprocess
import sys
import tomllib  # Python 3.11+, the oldest the project claims (tested below)
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# PyPI name -> conda-forge name, where they differ. Checked on the conda-forge channel's package
# pages (2026-12-02): pytorch, playwright-python (conda-forge has no Python package "playwright";
# Microsoft's own channel calls it that). The others are the same on both: numpy, scipy,
# matplotlib, ipywidgets, tqdm, torchinfo, torchvision, jupyterlab, ipykernel, nbval, jupytext,
# pytest, nbgrader, sphinx, myst-nb, jupyter-server-mathjax.
CONDA_NAMES = {"torch": "pytorch", "playwright": "playwright-python"}


def _split(req: str) -> tuple[str, str]:
    """'nbgrader>=0.9,<0.10' -> ('nbgrader', '>=0.9,<0.10'): the name and its limits, no spaces."""
    req = req.split(";", 1)[0].replace(" ", "")
    name = re.split(r"[<>=!~\[]", req, maxsplit=1)[0]
    limits = re.sub(r"^\[[^\]]*\]", "", req[len(name):])
    return name.lower(), ",".join(sorted(limits.split(","))) if limits else ""


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pip_requirements() -> dict:
    py = _pyproject()
    reqs = list(py["dependencies"])
    for extra in py.get("optional-dependencies", {}).values():
        reqs += extra
    return dict(_split(r) for r in reqs)


def _conda_requirements(path: Path) -> dict:
    deps = path.read_text().split("dependencies:", 1)[1]
    out = {}
    for line in deps.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)\s*(.*)$", line)
        if m and m.group(1) != "pip":
            out[m.group(1).lower()] = ",".join(sorted(m.group(2).replace(" ", "").split(","))) \
                if m.group(2) else ""
    return out


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environment_matches_pyproject(env_file):
    conda = _conda_requirements(ROOT / env_file)
    conda.pop("python")
    wanted = {CONDA_NAMES.get(name, name): limits for name, limits in _pip_requirements().items()}
    assert conda.keys() == wanted.keys(), (
        f"only in {env_file}: {sorted(conda.keys() - wanted.keys())}; "
        f"only in pyproject.toml (as conda-forge names): {sorted(wanted.keys() - conda.keys())}")
    differ = {n: (conda[n], wanted[n]) for n in conda if conda[n] != wanted[n]}
    assert not differ, f"version limits differ ({env_file}, pyproject.toml): {differ}"


def test_pypi_names_are_not_used_where_conda_forge_differs():
    for env_file in ("environment.yml", "binder/environment.yml"):
        names = _conda_requirements(ROOT / env_file)
        assert not names.keys() & CONDA_NAMES.keys(), f"{env_file} uses PyPI names {names.keys() & CONDA_NAMES.keys()}"


def test_kdlib_itself_is_installed():
    assert "-e ." in (ROOT / "environment.yml").read_text()
    post = (ROOT / "binder" / "postBuild").read_text()
    assert re.search(r"pip install .*-e \.", post)


def _oldest_claimed() -> tuple[int, int]:
    m = re.fullmatch(r">=(\d+)\.(\d+)", _pyproject()["requires-python"].replace(" ", ""))
    assert m, "requires-python should be a lower bound, >=X.Y"
    return int(m.group(1)), int(m.group(2))


def test_python_claims_agree():
    oldest = _oldest_claimed()
    text = ".".join(map(str, oldest))
    assert sys.version_info[:2] >= oldest
    readme = (ROOT / "README.md").read_text()
    assert set(re.findall(r"Python (\d+\.\d+)\+", readme)) == {text}, "README's 'Python X.Y+' claim"
    assert _conda_requirements(ROOT / "environment.yml")["python"] == f">={text}"
    binder = _conda_requirements(ROOT / "binder" / "environment.yml")["python"]
    assert tuple(map(int, binder.lstrip("=").split("."))) >= oldest
    assert f"sys.version_info < {oldest}" in (ROOT / "Makefile").read_text()


def test_no_data_files_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in files if re.search(r"\.(npz|npy|pt|pth|ckpt|mat|gz)$|-ubyte$", f)]
    assert not bad, f"data or checkpoint files are tracked: {bad}"


def test_binder_start_sets_fast_mode_and_the_students_lab():
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    out = subprocess.run([str(ROOT / "binder" / "start"), "env"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "KDLIB_FAST=1" in out.splitlines()
    assert f"JUPYTER_CONFIG_PATH={ROOT / 'lab-config'}" in out.splitlines()
    # a session that asks for full length keeps it
    out = subprocess.run([str(ROOT / "binder" / "start"), "env"], env={**env, "KDLIB_FAST": "0"},
                         capture_output=True, text=True, check=True).stdout
    assert "KDLIB_FAST=0" in out.splitlines()


def test_pyproject_lists_every_kdlib_package():
    """A non-editable install (``pip install .``) gets only the packages pyproject.toml names: every folder
    of kdlib with an ``__init__.py`` must be among them (kdlib.fast was once left out)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kdlib").rglob("__init__.py")}
    assert on_disk == listed
