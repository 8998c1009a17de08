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


# ---- numbers one notebook quotes from another's saved run -------------------------------------

def _constant(path: Path, name: str) -> dict:
    """The dict literal ``name = dict(...)`` assigned in a code cell of notebook ``path``."""
    import ast
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]
                    and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "dict"):
                return {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
    raise AssertionError(f"{path.name} has no code cell assigning {name} = dict(...)")


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return " ".join(_searchable(nbformat.v4.new_notebook(cells=[c])) for c in nb.cells if c.cell_type == "code"
                    ).replace(KDLIB, "")


def quoted_run_mismatches(quoted: dict, outputs: str) -> list[str]:
    """The strings that notebook 06's outputs print for ``quoted``'s 800-800 result and lack."""
    want = [f"| alone | 146 | {quoted['alone']:.1f} |", f"| distilled (MLP teacher) | 74 | {quoted['distilled']:.1f} |",
            f"mean **{quoted['gain']:+.1f}**, 95% CI [{quoted['low']:+.1f}, {quoted['high']:+.1f}]",
            f"student epochs {quoted['epochs']},", f"| 800-800 distilled, T = {quoted['T']} | 74 | {quoted['distilled']:.1f} "]
    if "teacher" in quoted:  # the test errors of the MLP teacher that 06's run loaded
        want.append(f"MLP teacher: {quoted['teacher']}. ")
    if "cnn_gain" in quoted:  # the same student distilled from the CNN teacher (notebook 03 quotes it)
        want.append(f"(CNN teacher, our substitution)**: per-seed differences")
        want.append(f"mean **{quoted['cnn_gain']:+.1f}**, 95% CI [{quoted['cnn_low']:+.1f}, {quoted['cnn_high']:+.1f}]")
    if "cnn_file" in quoted:  # the CNN teacher's checkpoint that 06's run loaded
        want.append(f"CNN teacher, notebook 02's recipe (loaded: {quoted['cnn_file']},")
    missing = [w for w in want if w not in outputs]
    if "train_acc" in quoted:  # the 800-800 student's training accuracy alone, last epoch, on every seed
        accs = re.findall(r"800-800 alone, seed \d+:[^\n]*?acc=(\d\.\d+)\]", outputs)
        if not accs or any(a != f"{quoted['train_acc']:.4f}" for a in accs):
            missing.append(f"acc={quoted['train_acc']:.4f}] on every '800-800 alone' line (found {accs})")
    return missing


@pytest.mark.parametrize("quoting, name", [("03", "SIX"), ("07", "NB06")])
def test_quotes_of_06s_saved_run_are_as_it_is(quoting, name):
    nbs = {p.stem[:2]: p for p in NOTEBOOKS}
    quoted = _constant(nbs[quoting], name)
    assert quoted_run_mismatches(quoted, _outputs(nbs["06"])) == [], (
        f"notebook {quoting}'s {name} constant no longer matches notebook 06's saved outputs: update it to 06's run")


def test_the_quote_check_finds_a_stale_quote():
    good = ("| alone | 146 | 149.0 | 151 |\n| distilled (MLP teacher) | 74 | 126.0 | 129 |\n"
            "mean **+23.0**, 95% CI [+11.6, +34.4]; student epochs 12, sweep epochs 8\n"
            "| 800-800 distilled, T = 20 | 74 | 126.0 (mean of 3 seeds) |")
    quoted = dict(alone=149.0, distilled=126.0, gain=23.0, low=11.6, high=34.4, epochs=12, T=20)
    assert quoted_run_mismatches(quoted, good) == []
    assert quoted_run_mismatches({**quoted, "gain": 19.0}, good) == ["mean **+19.0**, 95% CI [+11.6, +34.4]"]
    cnn = dict(cnn_gain=7.3, cnn_low=3.5, cnn_high=11.1)
    assert quoted_run_mismatches({**quoted, **cnn}, good + "\n**Alone minus distilled (CNN teacher, our substitution)**: "
                                 "per-seed differences +7, +6, +9 errors; mean **+7.3**, 95% CI [+3.5, +11.1]") == []
    assert len(quoted_run_mismatches({**quoted, **cnn}, good)) == 2
    bars = ("800-800 alone, seed 0: 100%| 2256/2256 [epoch=12/12, loss=0.0005, acc=1.0000]\n"
            "800-800 alone, seed 1: 100%| 2256/2256 [epoch=12/12, loss=0.0007, acc=0.9998]")
    assert quoted_run_mismatches({**quoted, "train_acc": 1.0}, good + bars) == [
        "acc=1.0000] on every '800-800 alone' line (found ['1.0000', '0.9998'])"]
    assert quoted_run_mismatches({**quoted, "train_acc": 1.0}, good + bars.replace("0.9998", "1.0000")) == []
    line = "CNN teacher, notebook 02's recipe (...): 97 test errors out of 10000; MLP teacher: 87. A teacher ..."
    assert quoted_run_mismatches({**quoted, "teacher": 87}, good + line) == []
    assert quoted_run_mismatches({**quoted, "teacher": 93}, good + line) == ["MLP teacher: 93. "]
    line = "CNN teacher, notebook 02's recipe (loaded: teacher-d2989947cd.pt, bf16 True, on ...): 96 test errors"
    assert quoted_run_mismatches({**quoted, "cnn_file": "teacher-d2989947cd.pt"}, good + line) == []
    assert quoted_run_mismatches({**quoted, "cnn_file": "teacher-91b736d0de.pt"}, good + line) == [
        "CNN teacher, notebook 02's recipe (loaded: teacher-91b736d0de.pt,"]
