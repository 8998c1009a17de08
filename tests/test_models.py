import pytest
import torch
from torchinfo import summary

from kdlib import models


@pytest.mark.parametrize("make, params, out", [
    (models.TeacherNet, 1_199_882, (1, 10)),
    (models.StudentNet, 12_730, (1, 10)),
    (models.BlogTeacherNet, 6_508_298, (1, 10)),
    (models.WeakStudentNet, 220, (1, 10)),
])
def test_parameter_counts_and_output(make, params, out):
    m = make()
    assert models.count_parameters(m) == params
    assert m(torch.zeros(1, 1, 28, 28)).shape == out


def test_teacher_summary_matches_seed_table():
    s = summary(models.TeacherNet(), input_size=(1, 1, 28, 28), verbose=0)
    shapes = [tuple(l.output_size) for l in s.summary_list if l.depth == 1]
    assert shapes[:6] == [(1, 32, 26, 26), (1, 32, 26, 26), (1, 64, 24, 24), (1, 64, 24, 24),
                          (1, 64, 12, 12), (1, 64, 12, 12)]
    assert shapes[6] == (1, 9216) and shapes[-1] == (1, 10)
    assert s.total_params == 1_199_882


def test_weak_student_summary():
    s = summary(models.WeakStudentNet(), input_size=(1, 1, 28, 28), verbose=0)
    shapes = [tuple(l.output_size) for l in s.summary_list if l.depth == 1]
    assert shapes == [(1, 1, 4, 4), (1, 1, 4, 4), (1, 16), (1, 10)]
