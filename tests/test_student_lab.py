"""The students' JupyterLab (`make lab`, Binder's `binder/start`): settings in lab-config/.

Starts JupyterLab on 127.0.0.1 on a copy of the project's notebooks/ folder, once with lab-config/
on JUPYTER_CONFIG_PATH as `make lab` does and once without, and checks what a student sees: the
jupytext .py twins hidden from the file browser (and still written when a notebook is saved),
nbgrader's lab extension disabled and its formgrader not served, through the REST API and in
Chromium (the menu bar and the file browser). Without the settings both show (the test can fail).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
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
sys.path.insert(0, str(ROOT / "tests"))  # test_browser: the Chromium setup


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
    work = tmp_path_factory.mktemp("lab")
    folder = work / "notebooks"
    folder.mkdir()
    for f in (ROOT / "notebooks").glob("[0-9][0-9]_*"):
        shutil.copy(f, folder / f.name)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = work / "lab.log"
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
            yield request.param, url, token, folder
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_file_browser_and_nbgrader_menus(lab):
    kind, url, token, _ = lab
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


def test_a_saved_notebook_still_writes_its_twin(lab):
    """Hiding the .py twins from the listing does not stop jupytext from writing them."""
    kind, url, token, folder = lab
    name = "01_softmax_temperature.ipynb"
    import nbformat
    nb = nbformat.read(folder / name, as_version=4)
    marker = f"edited in the students' lab {secrets.token_hex(4)}"
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
    req = urllib.request.Request(f"{url}/api/contents/{name}?token={token}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status in (200, 201)
    except urllib.error.HTTPError as e:
        pytest.fail(f"saving failed: {e.code} {e.read().decode()[:2000]}")
    assert marker in (folder / "01_softmax_temperature.py").read_text()


def test_what_the_student_sees_in_chromium(lab):
    """JupyterLab itself, in Debian's Chromium (tests/test_browser.py's setup): the menu bar and
    the file browser."""
    from test_browser import CHROMIUM, FLAGS
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test tries apt-get)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from playwright.sync_api import sync_playwright
    kind, url, token, _ = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/lab/workspaces/students-{kind}?token={token}")
            page.locator(".jp-DirListing-item", has_text="06_hinton_mnist.ipynb").wait_for(timeout=60_000)
            page.locator(".lm-MenuBar-item", has_text="Help").wait_for(timeout=60_000)
            page.wait_for_timeout(1000)  # extensions add their menus as they load
            menus = page.locator(".lm-MenuBar-item").all_inner_texts()
            files = [t.split()[0] for t in page.locator(".jp-DirListing-item").all_inner_texts() if t.strip()]
        finally:
            browser.close()
    assert "01_softmax_temperature.ipynb" in files
    if kind == "students":
        assert "Nbgrader" not in menus and not [f for f in files if f.endswith(".py")], (menus, files)
    else:
        assert "Nbgrader" in menus and "01_softmax_temperature.py" in files, (menus, files)
