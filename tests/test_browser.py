"""Real-browser test of notebook 01's temperature slider.

Starts JupyterLab on 127.0.0.1 with a token (on a copy of the notebook, so nothing in the project
is modified), opens notebook 01 in Debian's Chromium through Playwright, runs it, moves the
temperature slider with the keyboard and with the mouse, and checks that the shown probabilities
and entropy are the ones kdlib computes for the new T. Screenshots go to tests/artifacts/.
Skipped (with the reason) only where Chromium or Playwright is missing: `make test` installs both.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
NOTEBOOK = "01_softmax_temperature.ipynb"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
PLAYGROUND = "playground.ipynb"
READOUT = re.compile(r"T = ([\d.]+) · entropy = ([\d.]+) nats · p = \[([^\]]+)\]")


def _write_playground_notebook(path: Path) -> None:
    """Notebook 03's playground on its own (fast mode: the fast teacher, 2,000 images per split)."""
    import nbformat
    code = """import kdlib
from kdlib import playground, recipes, train
teacher, _ = recipes.mnist_teacher(progress=False)
data = {k: (x, y, train.predict_logits(teacher, x)) for k, (x, y) in recipes.mnist_split(2000).items()}
playground.Playground(data, max_epochs=1)"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, real_data_module):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test tries apt-get)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    _write_playground_notebook(work / PLAYGROUND)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KDLIB_FAST": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: {(work / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not answer within 60 s")
        yield url, token, work
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def real_data_module():
    """Real MNIST and fast mode for this module's kdlib calls, restored afterwards."""
    d = Path(__file__).resolve().parents[2] / "shared" / "data"
    d = Path(os.environ.get("KDLIB_DATA", d))
    if not (d / "mnist-train.npz").exists():
        pytest.skip("real MNIST not found (set KDLIB_DATA)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDLIB_DATA", str(d))
        mp.setenv("KDLIB_FAST", "1")
        yield d


def _expected(image_index: int, T: float):
    """What kdlib computes for test image ``image_index`` at temperature T (fast-mode teacher)."""
    from kdlib import recipes, train
    from kdlib.losses import softmax_t
    teacher, _ = recipes.mnist_teacher(progress=False)
    x = recipes.mnist_split(2000)["test"][0]
    q = softmax_t(train.predict_logits(teacher, x)[image_index], T)
    return q, float(torch.special.entr(q).sum())


def _read(page):
    text = page.locator(".kd-readout").inner_text()
    m = READOUT.search(text)
    assert m, f"unexpected readout {text!r}"
    return float(m.group(1)), float(m.group(2)), [float(v) for v in m.group(3).split(",")]


def _check(page, image_index):
    T, H, p = _read(page)
    slider_label = page.locator(".widget-slider .widget-readout").first
    assert float(slider_label.inner_text() or slider_label.input_value()) == pytest.approx(T, abs=0.006)
    q, h = _expected(image_index, T)
    assert p == pytest.approx(q.tolist(), abs=2e-4)
    assert H == pytest.approx(h, abs=2e-4)
    return T, H, p


def test_temperature_slider_in_jupyterlab(lab):
    from playwright.sync_api import expect

    url, token, work = lab
    with _browser_page() as page:
        readout = page.locator(".kd-readout")
        _open_and_run_all(page, url, token, NOTEBOOK, readout)
        expect(readout).to_contain_text("entropy", timeout=60_000)
        image_index = int(re.search(r"test image (\d+)", readout.inner_text()).group(1))
        T0, H0, p0 = _check(page, image_index)
        assert T0 == pytest.approx(1.0)

        # Keyboard: press ArrowRight 30 times on the slider's handle (0.01 decades each).
        # Locator.press focuses the handle before every key, so a focus change cannot eat keys.
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        for _ in range(30):
            handle.press("ArrowRight")
        label = page.locator(".widget-slider .widget-readout").first
        expect(readout).not_to_contain_text("T = 1.0000 ", timeout=60_000)
        for _ in range(100):  # the kernel answers every step; wait for the last one
            T1, _, _ = _read(page)
            if abs(float(label.inner_text() or label.input_value()) - T1) < 0.006:
                break
            page.wait_for_timeout(200)
        page.wait_for_timeout(500)
        T1, H1, p1 = _check(page, image_index)
        assert T1 == pytest.approx(10 ** 0.3, abs=0.02) and H1 > H0
        page.screenshot(path=str(ARTIFACTS / "browser_01_keyboard.png"))

        # Mouse: drag the handle to the right end of its track.
        box = page.locator(".widget-slider .noUi-target").first.bounding_box()
        hb = handle.bounding_box()
        page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, hb["y"] + hb["height"] / 2, steps=15)
        page.mouse.up()
        for _ in range(50):  # wait until our readout matches the slider's label
            page.wait_for_timeout(200)
            try:
                T2, _, _ = _read(page)
                if abs(float(label.inner_text() or label.input_value()) - T2) < 0.006 and T2 > T1 + 1:
                    break
            except AssertionError:
                pass
        T2, H2, p2 = _check(page, image_index)
        assert T2 > T1 + 1 and H2 > H1
        page.screenshot(path=str(ARTIFACTS / "browser_01.png"), full_page=False)
        print(f"screenshots: {ARTIFACTS / 'browser_01_keyboard.png'}, {ARTIFACTS / 'browser_01.png'}")


@contextmanager
def _browser_page():
    """A Chromium page (Playwright), closed afterwards."""
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def _open_and_run_all(page, url, token, notebook, ready):
    """Open ``notebook`` in JupyterLab, 'run all' once, and wait until every cell has run.

    'Run all' is sent again only while no cell has started: sending it twice re-runs the notebook
    and replaces its widgets under the test's feet (key presses then go to a removed slider).
    """
    # a workspace of its own: JupyterLab would otherwise restore the notebooks of the last test,
    # and 'run all' acts on whichever notebook is current
    page.goto(f"{url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_function(_CURRENT, arg=notebook, timeout=60_000)
    page.wait_for_function(_KERNEL_IDLE, timeout=120_000)
    page.locator(".jp-Notebook:visible").first.click()  # other notebooks may be open, hidden, in tabs
    prompts = page.locator(".jp-Notebook:visible .jp-InputPrompt")
    # stored execution counts would look like a run that has started: clear them first
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    for attempt in range(6):
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(_STARTED, timeout=20_000)
            break
        except Exception:  # the command was lost before the kernel was ready: nothing has started
            page.screenshot(path=str(ARTIFACTS / f"browser_{notebook}_wait{attempt}.png"))
    ready.wait_for(timeout=180_000)
    page.wait_for_function(_FINISHED, timeout=180_000)
    assert all("*" not in t for t in prompts.all_inner_texts())


_CURRENT = """path => { const w = window.jupyterapp.shell.currentWidget;
    return !!w && !!w.context && w.context.path === path; }"""
_KERNEL_IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle'; }"""
_PROMPTS = "[...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
_STARTED = """() => """ + _PROMPTS + """
    .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"""
_FINISHED = """() => { const ps = """ + _PROMPTS + """
    .map(e => e.textContent);  // '[*]' queued or running, '[3]' done ('run all' may add an empty cell)
    return ps.some(t => /\\[\\d+\\]/.test(t)) && !ps.some(t => t.includes('*')); }"""


def test_playground_train_button_in_jupyterlab(lab):
    """Notebook 03's playground: no sort controls before a run; press Train once, read the status line
    (validation accuracy, the labels-only baseline of the same seed, their difference) and the table's
    row; no label is cut and nothing runs past the right edge of the notebook."""
    from playwright.sync_api import expect

    url, token, work = lab
    with _browser_page() as page:
        button = page.get_by_role("button", name="Train")
        _open_and_run_all(page, url, token, PLAYGROUND, button)
        sort_by = page.get_by_text("sort by", exact=True)
        expect(sort_by).to_be_hidden()  # nothing to sort before the first run
        _check_layout(page)
        button.click()
        result = page.locator(".kd-result")
        expect(result).to_contain_text("difference", timeout=120_000)
        m = re.search(r"run 1: validation accuracy ([\d.]+)% vs ([\d.]+)% labels only \(seed 0\): "
                      r"difference ([+-][\d.]+) points", result.inner_text())
        assert m, result.inner_text()
        acc, base, diff = map(float, m.groups())
        assert 30 < acc < 100 and 30 < base < 100 and diff == pytest.approx(acc - base, abs=0.011)
        assert "test" not in result.inner_text()
        rows = page.locator("table.kd-runs tr")
        expect(rows).to_have_count(2)  # header and the run
        cells = rows.nth(1).locator("td").all_inner_texts()
        assert cells[6:9] == [f"{acc:.2f}", f"{base:.2f}", f"{diff:+.2f}"], cells
        assert "report (test" in rows.nth(0).inner_text()
        expect(sort_by).to_be_visible()
        _check_layout(page)
        page.screenshot(path=str(ARTIFACTS / "browser_03_playground.png"))


def _check_layout(page):
    """Every widget label shows its whole text, and no widget reaches past the output area's right edge."""
    cut = page.evaluate("""() => [...document.querySelectorAll('.widget-label, .widget-label-basic')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""")
    assert not cut, f"labels cut: {cut}"
    over = page.evaluate("""() => { const area = document.querySelector('.jp-OutputArea-output').getBoundingClientRect();
        return [...document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets, .jp-OutputArea-output table')]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > area.right + 1)
            .map(e => e.className + ': ' + e.textContent.slice(0, 60)); }""")
    assert not over, f"past the right edge: {over}"
