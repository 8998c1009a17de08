from dataclasses import replace

import pytest
import torch

import kdlib
from kdlib import augment, models, noisy, train
from kdlib.losses import logit_regression_loss


@pytest.mark.parametrize("make, params, shape", [
    (models.LeNetMNIST, 431_080, (2, 1, 28, 28)),
    (models.MLP800, 1_276_810, (2, 1, 28, 28)),
    (models.NiN, 966_986, (2, 3, 32, 32)),
    (models.LeNetCIFAR, 8_609_674, (2, 3, 32, 32)),
    (models.LeNetSVHN, 3_276_234, (2, 3, 32, 32)),
    (lambda: models.LeNetCIFAR(channels=(16, 32), hidden=256), 541_162, (2, 3, 32, 32)),
    (lambda: models.SmallVGG(24), 177_394, (2, 3, 32, 32)),
])
def test_parameter_counts(make, params, shape):
    m = make()
    assert models.count_parameters(m) == params
    assert m(torch.zeros(shape)).shape == (2, 10)


def test_noise_is_reproducible_and_fresh_per_batch():
    z, v = torch.zeros(8, 10), torch.randn(8, 10)
    f1 = noisy.noisy_teacher_loss(0.5, 1.0, torch.Generator().manual_seed(0))
    f2 = noisy.noisy_teacher_loss(0.5, 1.0, torch.Generator().manual_seed(0))
    a, b = f1(z, None, v), f1(z, None, v)
    assert a != b  # a new draw on each batch
    assert f2(z, None, v) == a  # same seed, same noise
    assert noisy.noisy_teacher_loss(0.0, 1.0)(z, None, v) == logit_regression_loss(z, v)


def test_expected_loss_matches_monte_carlo():
    torch.manual_seed(0)
    s, z = torch.randn(4, 10, dtype=torch.float64), 3 * torch.randn(4, 10, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    f = noisy.noisy_teacher_loss(0.4, 0.5, gen)
    mc = torch.stack([f(s, None, z) for _ in range(20000)]).mean()
    exact = noisy.expected_noisy_loss(s, z, 0.4, 0.5)
    assert mc == pytest.approx(exact.item(), rel=0.02)
    assert exact > logit_regression_loss(s, z)


def test_noisy_teacher_training_lowers_the_loss(real_data):
    d = kdlib.recipes.mnist_split(subset=1000)
    gen = kdlib.seed_everything(0)
    teacher = models.LeNetMNIST()
    v = train.predict_logits(teacher, d["train"][0]) * 5  # a fixed random teacher is enough here
    student = models.MLP800()
    loss_fn = noisy.noisy_teacher_loss(0.3, 0.5, gen)
    before = logit_regression_loss(train.predict_logits(student, d["train"][0]), v)
    opt = torch.optim.SGD(student.parameters(), lr=0.01)
    train.fit(student, opt, train.Batches(*d["train"], v, generator=gen), epochs=3, loss_fn=loss_fn, desc=None)
    after = logit_regression_loss(train.predict_logits(student, d["train"][0]), v)
    assert after < 0.5 * before


# ---- notebook 05's experiment code ----------------------------------------------------------

def test_settings_sizes_and_errors():
    paper = {ds: kdlib.noisy.settings(ds, "paper") for ds in ("mnist", "cifar10", "svhn")}
    assert [(p.teacher.model, p.student) for p in paper.values()] == [
        ("LeNetMNIST", "MLP800"), ("NiN", "LeNetCIFAR"), ("NiN", "LeNetSVHN")]
    assert models.count_parameters(noisy.build(paper["cifar10"].student, paper["cifar10"].student_kwargs)) == 8_609_674
    cpu = kdlib.noisy.settings("cifar10", "cpu")
    assert models.count_parameters(noisy.build(cpu.teacher.model, cpu.teacher.model_kwargs)) < models.count_parameters(models.NiN())
    with pytest.raises(ValueError, match="dataset must be one of"):
        noisy.settings("imagenet")
    with pytest.raises(ValueError, match="size must be one of"):
        noisy.settings("mnist", "huge")


def test_fast_mode_cuts_data_and_epochs(monkeypatch):
    monkeypatch.setenv("KDLIB_FAST", "0")
    full = noisy.settings("mnist")
    monkeypatch.setenv("KDLIB_FAST", "1")
    fast = noisy.settings("mnist")
    assert fast.subset == 2000 and full.subset is None
    assert fast.teacher.epochs < full.teacher.epochs and fast.student_epochs < full.student_epochs
    assert (fast.teacher.model, fast.student) == (full.teacher.model, full.student)


def test_random_flip_mirrors_about_half_and_repeats():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5).repeat(50, 1, 1, 1)
    a = augment.random_flip(x, torch.Generator().manual_seed(0))
    flipped = (a == x.flip(3)).flatten(1).all(1)
    kept = (a == x).flatten(1).all(1)
    assert (flipped ^ kept).all() and 30 < flipped.sum() < 70
    assert torch.equal(a, augment.random_flip(x, torch.Generator().manual_seed(0)))


def _tiny(dataset="mnist"):
    s = noisy.settings(dataset)
    return replace(s, subset=400, teacher=replace(s.teacher, epochs=1), student_epochs=2, student_subset=None)


def test_train_student_regresses_to_the_teacher(real_data):
    s = _tiny()
    d = noisy.load_data(s)
    x, y = d["train"]
    v = train.predict_logits(models.LeNetMNIST(), x) * 5  # any fixed targets will do
    untrained = logit_regression_loss(train.predict_logits(noisy.build(s.student, s.student_kwargs), x), v)
    for sigma in (0.0, 0.5):
        m = noisy.train_noisy_student(s, (x, y, v), seed=0, sigma=sigma, fraction=0.5, progress=False)
        assert logit_regression_loss(train.predict_logits(m, x), v) < 0.5 * untrained
    m1 = noisy.train_noisy_student(s, (x, y, v), seed=3, sigma=0.5, fraction=0.5, progress=False)
    m2 = noisy.train_noisy_student(s, (x, y, v), seed=3, sigma=0.5, fraction=0.5, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    alone = noisy.train_noisy_student(s, (x, y, v), seed=0, sigma=None, progress=False)  # labels only
    assert train.evaluate(alone, x, y)[1] > 0.5


def test_experiment_protocol_and_teacher_checkpoint(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    s = replace(_tiny("cifar10"), student_epochs=1)
    res = noisy.experiment(s, sigmas=[0.2, 0.8], fractions=[0.5, 1.0], fixed_fraction=0.5, dropouts=[0.5],
                           seeds=[0, 1], progress=False, log=lambda *a: None)
    stages = [r["stage"] for r in res["runs"]]
    assert stages == ["alone", "alone", "clean teacher", "clean teacher", "sigma grid", "sigma grid",
                      "fraction grid", "dropout grid", "alone", "clean teacher", "noisy teacher", "dropout"]
    for stage, chosen in [("alone", res["lr_alone"]), ("clean teacher", res["lr_teacher"])]:
        first = [r for r in res["runs"] if r["stage"] == stage and r["seed"] == 0]
        assert [r["lr"] for r in first] == list(s.student_lrs)  # each learning rate tried once
        assert chosen == max(first, key=lambda r: r["val_acc"])["lr"]  # and chosen on validation
        assert [r["lr"] for r in res["runs"] if r["stage"] == stage and r["seed"] == 1] == [chosen]
    assert all(r["lr"] == res["lr_teacher"] for r in res["runs"] if r["sigma"] is not None and r["seed"] == 1)
    sigma_grid = [r for r in res["runs"] if r["stage"] == "sigma grid"]
    assert res["best_sigma"] == max(sigma_grid, key=lambda r: r["val_acc"])["sigma"]
    assert all(len(v) == 2 for v in res["key"].values())
    assert not res["teacher_info"]["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 1
    _, info = noisy.dataset_teacher(s)  # second call: from the checkpoint
    assert info["loaded"]
    s2 = replace(s, teacher=replace(s.teacher, epochs=2))
    _, info2 = noisy.dataset_teacher(s2, progress=False)  # other settings: another file, the first kept
    assert not info2["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 2
