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
    kd = noisy.train_noisy_student(s, (x, y, v), seed=0, T=4.0, progress=False)  # soft targets, no labels
    agree = lambda m: float((train.predict_logits(m, x).argmax(1) == v.argmax(1)).float().mean())
    assert agree(kd) > 0.5 > agree(noisy.build(s.student, s.student_kwargs))


def test_experiment_protocol_and_teacher_checkpoint(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    s = replace(_tiny("cifar10"), student_epochs=1, student_lrs=(1e-3, 3e-3))
    g = noisy.Grids(sigmas=(0.2, 0.8), fractions=(0.25, 1.0), dropouts=(0.5,), temperatures=(4.0,), max_extra=1)
    with pytest.raises(ValueError, match="must not hold the tuning seed"):
        noisy.experiment(s, g, tune_seed=0, report_seeds=[0, 1])
    res = noisy.experiment(s, g, tune_seed=0, report_seeds=[1, 2], progress=False, log=lambda *a: None)
    runs = res["runs"]
    tuning, report = [r for r in runs if r["seed"] == 0], [r for r in runs if r["seed"] != 0]
    assert all(not r["stage"].startswith("report") for r in tuning)
    assert [r["stage"] for r in report] == [f"report: {k}" for k in noisy.KEY_STUDENTS] * 2
    for k in ("alone", "clean teacher"):  # learning rates chosen on validation, extended at an edge
        found = res["searches"][k]
        tried = sorted(found["records"])
        assert set(s.student_lrs) <= set(tried)
        assert found["best"] == max(tried, key=lambda lr: found["records"][lr]["val_acc"])
        assert len(tried) == 3  # a 2-point grid's best is at an edge: one extension, the way of the best
        assert (tried[0] < 1e-3) == (found["records"][1e-3]["val_acc"] >= found["records"][3e-3]["val_acc"])
    assert sorted(res["searches"]["T"]["records"]) == [2.0, 4.0]  # T=4 run, then one extension below
    assert all(r["lr"] == res["chosen"]["alone"]["lr"] for r in res["searches"]["T"]["records"].values())
    kd = res["searches"]["KD"]  # KD's learning rate: the alone student's, then one step away
    assert len(kd["records"]) == 2 and res["chosen"]["alone"]["lr"] in kd["records"]
    assert {r["T"] for r in kd["records"].values()} == {res["searches"]["T"]["best"]}
    clean = res["chosen"]["clean teacher"]
    assert res["searches"]["sigma"]["records"][0.0] is clean  # sigma 0 is the clean teacher, not re-run
    by_sigma = res["sigma_lrs"]  # two learning rates at the largest sigma, the better one for the others
    assert [r["lr"] for r in by_sigma[0.8]] == [clean["lr"], noisy.NOISY_LR_FACTOR * clean["lr"]]
    noisy_lr = max(by_sigma[0.8], key=lambda r: r["val_acc"])["lr"]
    assert res["searches"]["sigma"]["records"][0.8]["lr"] == noisy_lr
    assert all([r["lr"] for r in rs] == [noisy_lr] for sg, rs in by_sigma.items() if sg != 0.8)
    assert 0.2 in by_sigma and all(r["fraction"] == noisy.PAPER_FRACTION["cifar10"] for rs in by_sigma.values() for r in rs)
    noisy_pick = res["chosen"]["noisy teacher"]
    assert noisy_pick["sigma"] > 0 and noisy_pick["fraction"] > 0
    for k, c in res["chosen"].items():  # the report seeds repeat the chosen settings
        rs = [r for r in report if r["stage"] == f"report: {k}"]
        assert [(r["lr"], r["sigma"], r["fraction"], r["dropout"], r["T"]) for r in rs] == \
            [(c["lr"], c["sigma"], c["fraction"], c["dropout"], c["T"])] * 2
        assert res["key"][k] == [r["test_acc"] for r in rs]
    assert not res["teacher_info"]["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 1
    _, info = noisy.dataset_teacher(s)  # second call: from the checkpoint
    assert info["loaded"]
    s2 = replace(s, teacher=replace(s.teacher, epochs=2))
    _, info2 = noisy.dataset_teacher(s2, progress=False)  # other settings: another file, the first kept
    assert not info2["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 2


# ---- grid search, and the expected update under SGD and Adam --------------------------------

def test_search_extends_the_grid_until_the_best_is_inside():
    calls = []

    def run(v):
        calls.append(v)
        return {"val_acc": -(v - 0.4) ** 2}
    found = noisy.search(run, [0.1, 0.2], below=lambda v: v / 2, above=lambda v: 2 * v)
    assert calls == [0.1, 0.2, 0.4, 0.8] and found["best"] == 0.4 and found["edge"] is None
    calls.clear()
    found = noisy.search(run, [0.1, 0.2], above=lambda v: 2 * v, max_extra=1)  # not allowed far enough
    assert calls == [0.1, 0.2, 0.4] and found["best"] == 0.4 and found["edge"] == "upper"
    calls.clear()
    known = {0.0: {"val_acc": 1.0}}  # a known point (the clean teacher) that beats the grid: no extension
    found = noisy.search(run, [0.1, 0.2], below=lambda v: 0.0, known=known)
    assert calls == [0.1, 0.2] and found["best"] == 0.0 and found["edge"] == "lower"
    assert found["records"][0.0] is known[0.0]
    with pytest.raises(ValueError, match="max_extra"):
        noisy.search(run, [0.1], max_extra=-1)


def test_learning_rate_ladder():
    assert noisy.lr_above(1e-3) == 3e-3 and noisy.lr_below(1e-3) == 3e-4
    assert noisy.lr_below(noisy.LR_LADDER[0]) is None and noisy.lr_above(noisy.LR_LADDER[-1]) is None


def test_expected_update_sgd_unchanged_adam_shrinks():
    """The issue's one-parameter check: E[s] is the same for every sigma under SGD, not under Adam."""
    sgd = {sg: noisy.scalar_demo("sgd", sg, 0.5, steps=100, repeats=2000) for sg in (0.0, 1.0)}
    adam = {sg: noisy.scalar_demo("adam", sg, 0.5, steps=100, repeats=2000) for sg in (0.0, 1.0)}
    se = float(sgd[1.0].std()) / 2000 ** 0.5
    assert abs(float(sgd[1.0].mean()) - float(sgd[0.0].mean())) < 4 * se
    assert float(sgd[0.0].mean()) == pytest.approx(5 * (1 - 0.99 ** 100), rel=1e-9)  # s_k = z (1 - (1 - lr)^k)
    assert float(adam[1.0].mean()) < float(adam[0.0].mean()) - 10 * float(adam[1.0].std()) / 2000 ** 0.5
    with pytest.raises(ValueError, match="optimizer must be"):
        noisy.scalar_demo("rmsprop", 0.5, 0.5)


def test_mean_update_of_a_real_model():
    """A linear student: under SGD the mean displacement is the clean one (the step is linear in the
    noise), so the ratio is 1 within its error; under Adam it is clearly below 1."""
    torch.manual_seed(0)
    x, v = torch.randn(256, 20), 4 * torch.randn(256, 10)
    make = lambda: torch.nn.Linear(20, 10)
    sgd = noisy.mean_update(make, x, v, "sgd", 0.05, sigma=1.0, fraction=1.0, steps=6, repeats=64, batch_size=64)
    adam = noisy.mean_update(make, x, v, "adam", 0.01, sigma=1.0, fraction=1.0, steps=6, repeats=64, batch_size=64)
    assert abs(sgd["ratio"] - 1) < 4 * sgd["se"] + 1e-6
    assert adam["ratio"] < 1 - 4 * adam["se"]
    clean = noisy.mean_update(make, x, v, "adam", 0.01, sigma=0.0, fraction=1.0, steps=6, repeats=2, batch_size=64)
    assert clean["ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("sigma, fraction, name", [(-1, 0.5, "sigma"), (float("nan"), 0.5, "sigma"),
                                                   (0.2, 1.5, "fraction"), (0.2, -0.1, "fraction")])
def test_noise_settings_are_checked_up_front(sigma, fraction, name):
    """Issue 26: refused when the loss is made, not at the first batch; the closed form likewise."""
    with pytest.raises(ValueError, match=rf"^{name} must"):
        noisy.noisy_teacher_loss(sigma, fraction)
    z, v = torch.randn(4, 10), torch.randn(4, 10)
    with pytest.raises(ValueError, match=rf"^{name} must"):
        noisy.expected_noisy_loss(z, v, sigma, fraction)
