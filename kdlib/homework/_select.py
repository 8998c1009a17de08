"""The check shared by homeworks 3 and 4 for "choose a setting on the validation split, then read
the test set once": the student's function gets the grid and two split accessors, and the check's
accessors record every read, so it can tell when the test set was read and for what.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._common import Student, fail, listing


@dataclass(frozen=True)
class Words:
    """How the messages name things: the setting (``T``), the grid's name (``temperatures``), the
    accessors (``val_accuracy``), the score (``accuracy``) and whether higher is better."""
    setting: str
    grid: str
    val: str
    test: str
    score: str
    higher_is_better: bool


def _tables(grid, seed: int, higher: bool, tie: bool):
    """Validation and test scores for each value of ``grid`` whose best values differ (and, with
    ``tie``, with two equal best validation scores, the first of them the one to choose)."""
    g = torch.Generator().manual_seed(seed)
    n = len(grid)
    while True:
        val, test = (_scores(torch.randperm(n, generator=g).tolist(), higher) for _ in "vt")
        best = tied = _best(val, higher)
        if tie:
            tied = (best + 1 + int(torch.randint(n - 1, (1,), generator=g))) % n
            val[tied] = val[best]
        if _best(test, higher) not in (best, tied):  # choosing on test, or the wrong one of a tie, shows
            return val, test


def _scores(ranks, higher: bool) -> list:
    """Accuracies (0.81, 0.82, ...) or error counts (60, 57, ...) from ranks 0, 1, ... (best last)."""
    return [round(0.81 + r / 100, 2) if higher else 60 - 3 * r for r in ranks]


def _best(scores, higher: bool) -> int:
    """The index of the best score, the first of equal ones."""
    target = max(scores) if higher else min(scores)
    return scores.index(target)


class _Split:
    """An accessor that records each read in ``log`` as (split, index in the grid)."""

    def __init__(self, split: str, grid, scores, log: list, words: Words):
        self.split, self.grid, self.scores, self.log, self.words = split, grid, scores, log, words

    def __call__(self, value):
        for i, g in enumerate(self.grid):
            if value == g:
                self.log.append((self.split, i))
                return self.scores[i]
        fail(f"your function called {getattr(self.words, self.split)}({value!r}): that is not one "
             f"of the {self.words.grid} it was given ({listing(self.grid)}).")


def check_selection(student: Student, grid, words: Words, seed: int) -> None:
    """Run ``student(grid, val, test)`` on three score tables (one with a tie on validation) and
    fail naming the first rule it breaks: every value scored on validation, the best chosen (the
    first of equal scores), the test set read once, for the chosen value only, after the choice."""
    for k, tie in enumerate((False, True, False)):
        val, test = _tables(grid, seed + k, words.higher_is_better, tie)
        log: list = []
        out = student(list(grid), _Split("val", grid, val, log, words),
                      _Split("test", grid, test, log, words))
        _judge(out, log, grid, val, test, words)


def _judge(out, log, grid, val, test, words: Words) -> None:
    w, name = words, "your function"
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"{name} returned {type(out).__name__ if out is not None else 'nothing (None)'}; it "
             f"must return two things: the chosen {w.setting} and its {w.test} result, e.g. "
             f"`return best, {w.test}(best)`.")
    chosen, reported = out
    val_best, test_best = _best(val, w.higher_is_better), _best(test, w.higher_is_better)
    tests = [i for s, i in log if s == "test"]
    vals = [i for s, i in log if s == "val"]
    if chosen == grid[test_best] and test_best != val_best:
        fail(f"you chose {w.setting} on the test set: your choice, {w.setting} = {chosen!r}, has the "
             f"best {w.test} result but not the best {w.val} result ({w.setting} = "
             f"{grid[val_best]!r}). The test set may only report the choice: choose with "
             f"{w.val}, then call {w.test} once, for the chosen {w.setting}.")
    if not tests:
        fail(f"{name} never read the test set: after choosing {w.setting} on validation, call "
             f"{w.test}(best) once and return its result.")
    if vals and log.index(("test", tests[0])) < max(i for i, (s, _) in enumerate(log) if s == "val"):
        fail(f"{name} touched the test set during the selection: it called {w.test} before it had "
             f"scored every {w.setting} on validation. Finish the choice on the validation split "
             f"first, then read the test set once.")
    if len(tests) > 1:
        fail(f"{name} read the test set {len(tests)} times (for {w.setting} = "
             f"{listing([grid[i] for i in tests])}): "
             f"the test set is read once, for the chosen {w.setting} only. Every other read lets "
             f"the test set take part in the choice.")
    missing = [grid[i] for i in range(len(grid)) if i not in vals]
    if missing:
        fail(f"{name} did not score every {w.setting} on validation (never called {w.val} for "
             f"{listing(missing)}).")
    if chosen != grid[val_best]:
        best_word = "highest" if w.higher_is_better else "lowest"
        fail(f"{name} chose {w.setting} = {chosen!r}; the {best_word} validation {w.score} is at "
             f"{w.setting} = {grid[val_best]!r} (of equal scores, take the first in the "
             f"{w.grid}' order).")
    if tests[0] != val_best:
        fail(f"{name} read the test set for {w.setting} = {grid[tests[0]]!r}, not for the chosen "
             f"{w.setting} = {chosen!r}.")
    try:
        same = float(reported) == float(test[val_best])
    except (TypeError, ValueError):
        same = False
    if not same:
        fail(f"{name} returned {reported!r} as the test result; {w.test}({chosen!r}) gave "
             f"{test[val_best]!r}: return what it gave.")
