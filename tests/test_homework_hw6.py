"""kdlib.homework.hw6 (homework 6, after notebook 07): each check accepts right answers written in other
ways and names the typical mistake; the generic tests of every assignment (solutions pass, stubs
fail, release up to date, hidden tests) are in tests/test_homework.py."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_homework import accepts_on_two_inputs, autograde_scores, names_the_mistake

from kdlib import homework as checks
from kdlib import when


def _kl(v, z):
    return float(F.kl_div(F.log_softmax(z, 1), F.log_softmax(v, 1), reduction="batchmean", log_target=True))


def _copied(z, v, y):
    said, says = v.argmax(1), z.argmax(1)
    wrong = said != y
    return float((says[wrong] == said[wrong]).double().mean())  # nan over no rows


def _python_copied(z, v, y):
    said, says = v.argmax(1).tolist(), z.argmax(1).tolist()
    hits = [s == t for s, t, label in zip(says, said, y.tolist()) if t != label]
    return sum(hits) / len(hits)  # ZeroDivisionError when the teacher makes no mistake


AGREE, KL, COPY = checks.check_agreement, checks.check_teacher_student_kl, checks.check_copied_mistakes
WRONG = {  # case: (check, the student's function, a phrase of the message that names the mistake)
    "a count": (AGREE, lambda z, v: int((z.argmax(1) == v.argmax(1)).sum()), "a count"),
    "disagreement": (AGREE, lambda z, v: float((z.argmax(1) != v.argmax(1)).double().mean()), "disagreement"),
    "arg-max over the batch": (AGREE, lambda z, v: float((z.argmax(0) == v.argmax(0)).double().mean()), "dim=1"),
    "returns a tensor of rows": (AGREE, lambda z, v: z.argmax(1) == v.argmax(1), "one number"),
    "calls kdlib.when": (AGREE, lambda z, v: when.agreement(z, v), "kdlib.when.agreement"),
    "a percentage": (AGREE, lambda z, v: 100 * float((z.argmax(1) == v.argmax(1)).double().mean()), "a percentage"),
    "integer division": (AGREE, lambda z, v: int((z.argmax(1) == v.argmax(1)).sum()) // len(z), "integer division"),
    "a tensor of shape (1,)": (AGREE, lambda z, v: (z.argmax(1) == v.argmax(1)).double().mean().reshape(1),
                               "a float (float(...)"),
    "log_target forgotten": (KL, lambda v, z: float(F.kl_div(F.log_softmax(z, 1), F.log_softmax(v, 1),
                                                             reduction="batchmean")), "log_target=True"),
    "log-softmax by hand overflows": (KL, lambda v, z: float(F.kl_div(
        z - z.exp().sum(1, keepdim=True).log(), v - v.exp().sum(1, keepdim=True).log(), reduction="batchmean",
        log_target=True)), "at large logits"),
    "negative KL": (KL, lambda v, z: -_kl(v, z), "negative"),
    "softmax over the batch": (KL, lambda v, z: float(F.kl_div(F.log_softmax(z, 0), F.log_softmax(v, 0),
                                                               reduction="batchmean", log_target=True)), "dim=0"),
    "copied, a percentage": (COPY, lambda z, v, y: 100 * _copied(z, v, y), "a percentage"),
    "copied, a count": (COPY, lambda z, v, y: int(((z.argmax(1) == v.argmax(1)) & (v.argmax(1) != y)).sum()),
                        "a count of images"),
    "None without mistakes": (COPY, lambda z, v, y: None if (v.argmax(1) == y).all() else _copied(z, v, y),
                              "returned None: return float('nan') instead"),
    "KL swapped": (KL, lambda v, z: _kl(z, v), "KL(student || teacher)"),
    "mean over the classes": (KL, lambda v, z: float(F.kl_div(F.log_softmax(z, 1), F.softmax(v, 1), reduction="mean")),
                              "reduction='mean'"),
    "sum over the rows": (KL, lambda v, z: float(F.kl_div(F.log_softmax(z, 1), F.softmax(v, 1), reduction="sum")),
                          "do not sum them"),
    "cross-entropy": (KL, lambda v, z: float(-(F.softmax(v, 1) * F.log_softmax(z, 1)).sum(1).mean()), "cross-entropy"),
    "probabilities as input": (KL, lambda v, z: float(F.kl_div(F.softmax(z, 1), F.softmax(v, 1), reduction="batchmean")),
                               "log-probabilities"),
    "log of softmax": (KL, lambda v, z: float((F.softmax(v, 1) * (torch.log(F.softmax(v, 1)) - torch.log(F.softmax(z, 1))))
                                             .sum(1).mean()), "F.log_softmax"),
    "over all rows": (COPY, lambda z, v, y: float(((z.argmax(1) == v.argmax(1)) & (v.argmax(1) != y)).double().mean()),
                      "all the rows"),
    "any student error": (COPY, lambda z, v, y: float((z.argmax(1) != y)[v.argmax(1) != y].double().mean()),
                          "any wrong class"),
    "over the student's mistakes": (COPY, lambda z, v, y: _copied(v, z, y), "the student's mistakes"),
    "agreement instead": (COPY, lambda z, v, y: float((z.argmax(1) == v.argmax(1)).double().mean()), "over all rows"),
    "0 without mistakes": (COPY, lambda z, v, y: 0.0 if (v.argmax(1) == y).all() else _copied(z, v, y),
                           "return float('nan')"),
    "divides by zero": (COPY, _python_copied, "ZeroDivisionError"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's warning for that mistake
def test_check_names_the_mistake(case):
    names_the_mistake(*WRONG[case])


RIGHT = {  # right answers written in other ways than the solutions
    "agreement as a tensor": (AGREE, lambda z, v: (z.argmax(1) == v.argmax(1)).float().mean()),
    "agreement in NumPy": (AGREE, lambda z, v: np.mean(z.numpy().argmax(1) == v.numpy().argmax(1))),
    "KL by its formula": (KL, lambda v, z: (F.softmax(v, 1) * (F.log_softmax(v, 1) - F.log_softmax(z, 1))).sum(1).mean()),
    "KL with probabilities as target": (KL, lambda v, z: F.kl_div(F.log_softmax(z, 1), F.softmax(v, 1),
                                                                  reduction="batchmean")),
    "copied, nan from an empty mean": (COPY, _copied),
    "copied with a guard": (COPY, lambda z, v, y: math.nan if (v.argmax(1) == y).all() else _python_copied(z, v, y)),
}


@pytest.mark.parametrize("case", sorted(RIGHT))
def test_check_accepts_right_answers(case, capsys):
    accepts_on_two_inputs(*RIGHT[case], capsys)


# (student): (edits to the solution, expected score of 10); a right one and a typical wrong one (each autograded
# submission costs a kernel and six small trainings: the suite's time)
SUBMISSIONS = {
    "alice": ((), 10),
    # KL(student || teacher): its 3 points (the experiment's KL ordering still holds: it asserts the direction)
    "bob": ((("return float(F.kl_div(log_q, log_p,", "return float(F.kl_div(log_p, log_q,"),), 7),
}


def test_autograde_grades_right_and_wrong_submissions(real_data, tmp_path):
    """nbgrader autograde + export, hidden tests included, on students' notebooks made from the exercise: each
    wrong submission loses exactly the points of the cells its mistake breaks."""
    scores = autograde_scores(tmp_path, "hw6_fidelity", {s: edits for s, (edits, _) in SUBMISSIONS.items()})
    assert scores == {s: (score, 10) for s, (_, score) in SUBMISSIONS.items()}
