"""Tests of kdlib.repro: seeds of any integer type, and every other seed refused."""
import numpy as np
import pytest
import torch

from kdlib import repro


@pytest.mark.parametrize("seed", [np.int64(3), np.uint32(3), torch.tensor(3)])
def test_seed_of_any_integer_type(seed):
    assert torch.equal(repro.seed_everything(seed).get_state(), repro.seed_everything(3).get_state())


@pytest.mark.parametrize("seed", [True, False, 3.0, np.float64(3.0), torch.tensor(3.0), -1,
                                  np.int64(-1), 2 ** 64, "3", None, torch.tensor([3])])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=r"^seed must"):
        repro.seed_everything(seed)
