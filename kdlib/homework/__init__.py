"""Checks for the homework notebooks (homework/): each compares a student's function with kdlib's.

Call a check on your function in a notebook, e.g. ``check_softmax_t(softmax_t)``. It runs your function
on several inputs and compares it with kdlib's reference (:mod:`kdlib.losses`; autograd for homework 5,
:mod:`kdlib.when` for homework 6). On success it prints a
line starting with "✓"; otherwise it raises :class:`CheckFailed` (an ``AssertionError``) whose
message says what went wrong and, for the common mistakes, why: no T^2, ``reduction='mean'``
instead of ``'batchmean'``, alpha on the wrong term, a softmax over the wrong dimension,
``log(softmax(...))`` at large logits, noise added instead of multiplied, and so on.

Every call of your function is validated the same way (a tensor of the right shape, finite, or one number
where a check asks for one; its inputs left unchanged), runs under a time limit (``KDLIB_CHECK_TIME_LIMIT``
seconds, default 10, on Linux and macOS), and may not call kdlib's own implementation of what you are writing
(``kdlib.losses``, ``kdlib.when``'s measures, autograd in homework 5; nor torch's softmax inside ``softmax_t``):
calling it proves nothing.

- :mod:`kdlib.homework.hw1`: ``check_softmax_t``, ``check_soft_target_loss``, ``check_distillation_loss``
- :mod:`kdlib.homework.hw2`: ``check_perturb_logits``, ``check_training_step``
- :mod:`kdlib.homework.hw3`: ``check_teacher_logits``, ``check_distill_epoch``, ``check_train_student``,
  ``check_paired_ci``, ``check_verdict``, ``check_choose_temperature``
- :mod:`kdlib.homework.hw4`: ``check_transfer_set``, ``check_train_without_3s``, ``check_accuracy_on_3s``,
  ``check_shift_bias``, ``check_choose_bias``
- :mod:`kdlib.homework.hw5`: ``check_soft_target_grad``, ``check_central_difference``, ``check_logit_matching_grad``
- :mod:`kdlib.homework.hw6`: ``check_agreement``, ``check_teacher_student_kl``, ``check_copied_mistakes``
- :func:`mnist_task` (:mod:`kdlib.homework._task`): the data and fast teacher of homeworks 3, 4 and 6.
- :mod:`kdlib.homework._common`: what they share.
"""
from ._common import CheckFailed
from .hw1 import check_distillation_loss, check_soft_target_loss, check_softmax_t
from .hw2 import check_perturb_logits, check_training_step
from .hw3 import (check_choose_temperature, check_distill_epoch, check_paired_ci, check_teacher_logits,
                  check_train_student, check_verdict)
from .hw4 import (check_accuracy_on_3s, check_choose_bias, check_shift_bias, check_train_without_3s,
                  check_transfer_set)
from .hw5 import check_central_difference, check_logit_matching_grad, check_soft_target_grad
from .hw6 import check_agreement, check_copied_mistakes, check_teacher_student_kl
from ._task import mnist_task

__all__ = ["CheckFailed", "check_softmax_t", "check_soft_target_loss", "check_distillation_loss",
           "check_perturb_logits", "check_training_step",
           "check_teacher_logits", "check_distill_epoch", "check_train_student", "check_paired_ci",
           "check_verdict", "check_choose_temperature",
           "check_transfer_set", "check_train_without_3s", "check_accuracy_on_3s", "check_shift_bias",
           "check_choose_bias", "check_soft_target_grad", "check_central_difference", "check_logit_matching_grad",
           "check_agreement", "check_teacher_student_kl", "check_copied_mistakes", "mnist_task"]
