"""kdlib.config.device and bf16 (issue 25, item 4): the one device everything trains and predicts on,
and whether that device gets bf16 autocast. No GPU is needed: where one matters, torch.cuda's answers
are replaced, so the tests check what kdlib does with them."""
import pytest
import torch

from kdlib import config


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def gpu_2(monkeypatch):
    """A machine whose current GPU is cuda:2 (as torch.cuda would answer it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)


def test_without_a_gpu_the_device_is_the_cpu(no_gpu):
    assert config.device() == torch.device("cpu")
    assert config.device("meta") == torch.device("meta")  # an explicit device is kept
    assert config.device(torch.device("cpu")) == torch.device("cpu")


def test_a_gpu_comes_with_its_index(gpu_2):
    """Tensors report cuda:2, not cuda: the device kdlib compares them with carries the index."""
    assert config.device() == torch.device("cuda", 2) != torch.device("cuda")
    assert config.device("cuda") == torch.device("cuda", 2)
    assert config.device("cuda:1") == torch.device("cuda", 1)  # an explicit index is kept
    assert config.device("cpu") == torch.device("cpu")


def test_bf16_follows_the_device(monkeypatch, no_gpu):
    cpu_has = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    monkeypatch.delenv("KDLIB_BF16", raising=False)
    assert config.bf16() == config.bf16("cpu") == cpu_has  # the CPU's own answer, as before the device rule
    assert not config.bf16("meta") and not config.bf16("cuda")  # no GPU here
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert config.bf16("cpu")
    monkeypatch.setenv("KDLIB_BF16", "0")
    assert not config.bf16("cpu")


def test_bf16_on_a_gpu_asks_the_gpu(monkeypatch, gpu_2):
    monkeypatch.delenv("KDLIB_BF16", raising=False)
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
        assert config.bf16() is supported and config.bf16("cuda:0") is supported
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setenv("KDLIB_BF16", "off")
    assert not config.bf16()


def test_cpu_name_says_which_vector_instructions_a_timing_had():
    """Timings name the CPU class: the project's machines differ in AVX-512 and bf16."""
    from kdlib.config import isa
    assert isa(["fpu", "avx2", "avx512f", "avx512_bf16"]) == "AVX-512, bf16"
    assert isa(["avx2", "avx512f", "amx_bf16"]) == "AVX-512, bf16"
    assert isa(["avx2", "avx512f"]) == "AVX-512, no bf16"
    assert isa(["sse2", "avx2"]) == "AVX2 only"
    assert isa(["sse2"]) == "no AVX2"
    name = config.cpu_name()
    assert name and ("(" not in name or name.endswith(")"))
