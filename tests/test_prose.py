"""Every measured number in a notebook's text must come from the run shown.

A markdown cell may not hold a decimal (0.949, 97.96%) or a count (9,904; 1,199,882) that the
notebook's code and stored outputs do not contain (a percentage may appear there as a fraction:
97.96 as 0.9796). Settings stated in kdlib's own code (784 inputs, 48,000 training images) count
as the notebook's code. Results belong in sentences printed by code
(``display(Markdown(f"..."))``); paper and seed figures live as named constants in code cells.
Not checked: numbers inside LaTeX ($...$), inline code (`...`) and links, years, and small
integers (below 100), which are settings or positions ("3 seeds", "section 2") more than results.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.,])\d+\.\d+(?![\w]|\.\d)|(?<![\w.,])\d{3,}(?![\w])")
HIDDEN = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)|https?://\S+|arXiv[: ]\s*\d+\.\d+", re.S)


def measured_numbers(markdown: str) -> set[str]:
    """The numbers in ``markdown`` that look measured (see the module docstring)."""
    text = HIDDEN.sub(" ", markdown)
    found = set()
    for m in NUMBER.findall(text):
        plain = m.replace(",", "")
        if re.fullmatch(r"(19|20)\d\d", plain):  # a year
            continue
        found.add(plain)
    return found


KDLIB = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "kdlib").rglob("*.py"))


def _searchable(nb) -> str:
    """kdlib's code, the notebook's code and every stored text output, without thousands separators."""
    parts = [KDLIB]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return re.sub(r"(?<=\d),(?=\d{3})", "", "\n".join(parts))


def unbacked_numbers(nb) -> list[tuple[int, str]]:
    """(cell index, number) for each measured number of the text that the code and outputs lack."""
    haystack = _searchable(nb)
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for num in sorted(measured_numbers(cell.source)):
                forms = [num]
                if "." in num and float(num) < 100:  # a percentage printed as a fraction
                    forms.append(f"{float(num) / 100:.{len(num.split('.')[1]) + 2}f}")
                if not any(re.search(rf"(?<![\d.]){re.escape(f)}", haystack) for f in forms):
                    missing.append((i, num))
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_measured_number_in_the_text_comes_from_the_run(path):
    missing = unbacked_numbers(nbformat.read(path, as_version=4))
    assert not missing, (f"{path.name}: numbers in markdown cells that no code or output of the notebook "
                         f"contains (cell, number): {missing}. Print such sentences from code, or "
                         f"name paper/seed figures as constants in a code cell.")


def test_the_check_finds_a_stale_number():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("PAPER_ERRORS = 146\nprint(acc)", outputs=[
            nbformat.v4.new_output("stream", text="test accuracy 0.9904 (9,904 of 10,000)\n")]),
        nbformat.v4.new_markdown_cell("We got 0.9904 (9,904 correct) against the paper's 146 errors; "
                                      "Hinton et al. 2015, $T=20$, `lr=0.001`, 5 seeds."),
        nbformat.v4.new_markdown_cell("As a percentage: 99.04%. A stale claim: 0.9911, 99.11% and 9,911 correct."),
    ])
    assert unbacked_numbers(nb) == [(2, "0.9911"), (2, "99.11"), (2, "9911")]
    assert measured_numbers("1,199,882 parameters, 97.96%, 12 seeds, 2016, $0.5$") == {"1199882", "97.96"}
