"""Build the course website into build/book (``make book``), offline.

    python scripts/build_book.py [OUTPUT_DIR [STAGING_DIR]]

Stages book/ (conf.py, index.md), the README (for its *Start here* section), the committed
notebooks (outputs as saved, never executed) and MathJax from the jupyter-server-mathjax package
into build/book-src, then runs Sphinx (MyST-NB). Nothing is fetched from the network.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "book-src"
OUT = ROOT / "build" / "book"
NEEDS = "the book's packages are missing: pip install -e '.[book]' (or make book)"


def stage(where: Path = STAGE) -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise SystemExit(f"{NEEDS} ({e})") from e
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(ROOT / "book", where)
    shutil.copy(ROOT / "README.md", where / "README.md")
    for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        shutil.copy(nb, where / nb.name)
    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(mathjax, where / "_mathjax" / "mathjax")
    return where


def build(out: Path = OUT, where: Path = STAGE) -> Path:
    """Stage the sources and build the HTML site into ``out``; returns ``out / "index.html"``."""
    try:
        from sphinx.cmd.build import build_main
    except ImportError as e:
        raise SystemExit(f"{NEEDS} ({e})") from e
    stage(where)
    rc = build_main(["-q", "-E", "-W", "--keep-going", "-b", "html", "-d", str(where / "_doctrees"), str(where), str(out)])
    if rc:
        raise SystemExit(f"sphinx-build failed (exit status {rc})")
    return out / "index.html"


if __name__ == "__main__":
    args = [Path(a).resolve() for a in sys.argv[1:3]]
    index = build(*args)
    print(f"the course website: {index}")
