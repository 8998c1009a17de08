"""The course website (`make book`): built offline from the committed notebooks, opened in Chromium.

Builds the site into a temporary folder with scripts/build_book.py (Sphinx + MyST-NB, no
execution; inside `unshare -n`, with no network at all, where that works, e.g. as root), serves it on 127.0.0.1, and opens notebook 01's and 06's pages in Debian's Chromium
through Playwright (the setup of tests/test_browser.py). Checks that a formula was typeset by the
bundled MathJax, that figures (saved PNG outputs) load, that a table renders, that search finds a
notebook, and that no request leaves 127.0.0.1. Skipped, with the reason, where the book's
packages (`pip install -e '.[book]'`), Chromium or Playwright are missing.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import CHROMIUM, FLAGS  # noqa: E402

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _no_network_prefix() -> list:
    """``unshare -n`` (a network namespace with no interfaces) where it works: the build then
    cannot reach any network. Elsewhere the build runs as it is."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = [m for m in ("sphinx", "myst_nb", "jupyter_server_mathjax") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the book's packages are missing ({', '.join(missing)}): pip install -e '.[book]'")
    work = tmp_path_factory.mktemp("book")
    cmd = _no_network_prefix() + [sys.executable, str(ROOT / "scripts" / "build_book.py"),
                                  str(work / "html"), str(work / "src")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    print(f"built {'without a network (unshare -n)' if cmd[0] == 'unshare' else 'offline-capable'}: {work / 'html'}")
    return work / "html"


def test_every_notebook_is_a_page_in_series_order(site):
    html = (site / "index.html").read_text()
    positions = [html.find(f'href="{name}.html"') for name in NOTEBOOKS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), positions
    assert "Start here" in html and "gives a quick run of any notebook" in html  # the README's section
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        assert "cell_output" in page, f"{name}: no saved outputs on its page"
        assert "cdn." not in page and "unpkg.com" not in page and "jsdelivr" not in page, name
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test tries apt-get)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    return page, requests


def _check_math(page):
    """Every formula typeset by MathJax: one rendered element per TeX source, with a size."""
    page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                           " && document.querySelectorAll('span.MathJax').length > 0", timeout=60_000)
    sources = page.locator('script[type^="math/tex"]').count()
    assert sources > 0 and page.locator("span.MathJax").count() == sources
    box = page.locator("span.MathJax").first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5, box
    assert page.locator(".MathJax_Error, .merror").count() == 0
    assert "\\frac" not in page.locator("body").inner_text()  # no TeX left as text


def _check_figures(page, at_least):
    imgs = page.locator(".cell_output img")
    assert imgs.count() >= at_least
    page.wait_for_function("() => [...document.querySelectorAll('.cell_output img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)


def _local_only(requests, base):
    # about:blank is MathJax's font probe, not a download
    outside = [u for u in requests if not u.startswith((base, "data:", "blob:", "file:", "about:"))]
    assert not outside, f"requests left 127.0.0.1: {outside[:5]}"


def test_notebook_01_page_shows_formulas_and_figures(served, browser):
    page, requests = _open(browser, f"{served}/01_softmax_temperature.html")
    _check_math(page)
    _check_figures(page, at_least=4)
    page.screenshot(path=str(_artifacts() / "book_01.png"))
    _local_only(requests, served)


def test_notebook_06_page_shows_a_table_formulas_and_figures(served, browser):
    page, requests = _open(browser, f"{served}/06_hinton_mnist.html")
    _check_math(page)
    _check_figures(page, at_least=2)
    table = page.locator("table").first
    table.scroll_into_view_if_needed()
    assert table.locator("th").count() >= 2 and table.locator("tbody tr").count() >= 2
    assert table.bounding_box()["height"] > 30
    page.screenshot(path=str(_artifacts() / "book_06.png"), full_page=False)
    _local_only(requests, served)


def test_search_finds_the_notebooks(served, browser):
    page, requests = _open(browser, f"{served}/search.html?q=temperature")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=30_000)
    assert "01_softmax_temperature.html" in page.locator("#search-results").inner_html()
    _local_only(requests, served)


def _artifacts() -> Path:
    d = ROOT / "tests" / "artifacts"
    d.mkdir(exist_ok=True)
    return d
