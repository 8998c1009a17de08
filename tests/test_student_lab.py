"""The students' JupyterLab (`make lab`, Binder's `binder/start`): settings in lab-config/.

Starts JupyterLab on 127.0.0.1 on the project's notebooks/ folder (read only: the test lists it),
once with lab-config/ on JUPYTER_CONFIG_PATH as `make lab` does and once without, and checks what
a student sees: the jupytext .py twins hidden from the file browser, nbgrader's lab extension
disabled and its formgrader not served. Without the settings both show (the test can fail).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "lab-config"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:  # not listening yet
        return 0, ""


@pytest.fixture(scope="module", params=["students", "plain"])
def lab(request, tmp_path_factory):
    pytest.importorskip("jupyterlab")
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_PATH"}
    if request.param == "students":
        env["JUPYTER_CONFIG_PATH"] = str(CONFIG)  # as the Makefile's `lab` target
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT / 'notebooks'}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path_factory.mktemp("lab") / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                if _get(f"{url}/api/status?token={token}")[0] == 200:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            else:
                raise RuntimeError("JupyterLab did not answer within 120 s")
            yield request.param, url, token
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_file_browser_and_nbgrader_menus(lab):
    kind, url, token = lab
    status, body = _get(f"{url}/api/contents/?token={token}")
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "01_softmax_temperature.ipynb" in names and "05_noisy_teachers.ipynb" in names
    twins = {n for n in names if n.endswith(".py")}

    status, page = _get(f"{url}/lab?token={token}")
    m = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert status == 200 and m, "no page config in /lab"
    disabled = json.loads(m.group(1)).get("disabledExtensions", [])
    formgrader = _get(f"{url}/formgrader?token={token}")[0]

    if kind == "students":
        assert not twins, f"the .py twins are listed: {sorted(twins)}"
        assert "@jupyter/nbgrader" in disabled
        assert formgrader == 404
    else:  # JupyterLab's defaults: what the settings change
        assert "01_softmax_temperature.py" in twins
        assert "@jupyter/nbgrader" not in disabled
        assert formgrader == 200


def test_makefile_lab_uses_the_settings():
    recipe = (ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "JUPYTER_CONFIG_PATH" in recipe and "lab-config" in recipe
