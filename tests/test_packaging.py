"""environment.yml (conda) and pyproject.toml (pip) must name the same packages."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in py["dependencies"]}
    for extra in py.get("optional-dependencies", {}).values():
        pip_names |= {_name(r) for r in extra}
    conda_names = set()
    deps = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    for line in deps.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)
        if m and m.group(1) not in ("python", "pip"):
            conda_names.add(CONDA_NAMES.get(m.group(1).lower(), m.group(1).lower()))
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}")
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_no_data_files_tracked():
    import subprocess
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in files if re.search(r"\.(npz|npy|pt|pth|ckpt|mat|gz)$|-ubyte$", f)]
    assert not bad, f"data or checkpoint files are tracked: {bad}"
