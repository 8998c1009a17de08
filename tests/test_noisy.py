from dataclasses import replace

import pytest
import torch

import kdlib
from kdlib import augment, models, noisy, train
from kdlib.losses import logit_regression_loss
from kdlib.noisy import Student


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
        st = Student("L2", 1e-3, sigma=sigma, fraction=0.5)
        m = noisy.train_student(s, st.loss_fn(0), (x, y, v), 0, st.lr)
        assert logit_regression_loss(train.predict_logits(m, x), v) < 0.5 * untrained
    st = Student("L2", 1e-3, sigma=0.5, fraction=0.5)
    m1, m2 = (noisy.train_student(s, st.loss_fn(3), (x, y, v), 3, st.lr) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    alone = noisy.train_student(s, Student("labels", 1e-3).loss_fn(0), (x, y, v), 0, 1e-3)
    assert train.evaluate(alone, x, y)[1] > 0.5
    kd = noisy.train_student(s, Student("KD", 1e-3, T=4.0).loss_fn(0), (x, y, v), 0, 1e-3)  # no labels
    agree = lambda m: float((train.predict_logits(m, x).argmax(1) == v.argmax(1)).float().mean())
    assert agree(kd) > 0.5 > agree(noisy.build(s.student, s.student_kwargs))


def test_a_seed_fixes_weights_and_batches_for_every_loss(monkeypatch):
    """Issue 27: the noise has its own generator, so a noisy student, a dropout student, KD and the
    student alone with one seed start from the same weights and see the same batches in every epoch
    (before, the noise drew from the batches' generator and moved the order from epoch 2 on)."""
    seen = []

    def spy(model, optimizer, batches, val=None, *, epochs, loss_fn, **kw):
        start = [p.detach().clone() for p in model.parameters()]
        order = []
        for _ in range(epochs):
            for xb, yb, vb in batches:
                loss_fn(model(xb), yb, vb)  # draws the noise, as a training step would
                order.append(yb.clone())
        seen.append((start, order))

    monkeypatch.setattr(train, "fit", spy)
    s = replace(_tiny(), student_epochs=3, student_batch=16)
    g = torch.Generator().manual_seed(0)
    x, y, v = torch.randn(64, 1, 28, 28, generator=g), torch.arange(64) % 10, torch.randn(64, 10, generator=g)
    students = [Student("labels", 1e-3), Student("KD", 1e-3, T=4.0), Student("L2", 1e-3),
                Student("L2", 3e-3, sigma=1.0, fraction=0.5), Student("L2", 1e-3, dropout=0.3)]
    for st in students:
        noisy.train_student(s, st.loss_fn(3), (x, y, v), 3, st.lr, st.dropout)
    noisy.train_student(s, students[3].loss_fn(4), (x, y, v), 4, 1e-3)  # another seed
    (w0, order0), other = seen[0], seen[-1]
    assert len(order0) == 3 * 4
    for w, order in seen[1:-1]:
        assert all(torch.equal(a, b) for a, b in zip(w0, w)) and all(torch.equal(a, b) for a, b in zip(order0, order))
    assert not torch.equal(w0[0], other[0][0]) and not all(torch.equal(a, b) for a, b in zip(order0, other[1]))


def test_noise_generator_is_its_own_and_repeatable():
    z, v = torch.zeros(8, 10), torch.randn(8, 10)
    st = Student("L2", 1e-3, sigma=0.5, fraction=1.0)
    assert st.loss_fn(3)(z, None, v) == st.loss_fn(3)(z, None, v)
    assert st.loss_fn(3)(z, None, v) != st.loss_fn(4)(z, None, v)
    before = torch.random.get_rng_state()
    kdlib.seed_everything(3)
    batches = torch.random.get_rng_state()
    st.loss_fn(3)(z, None, v)
    assert torch.equal(torch.random.get_rng_state(), batches)  # the global generator is not touched
    assert not torch.equal(before, batches)


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss="hinton", lr=1e-3), "loss must be one of"), (dict(loss="KD", lr=1e-3), "T must be"),
    (dict(loss="labels", lr=1e-3, T=2.0), "T must be"), (dict(loss="KD", lr=1e-3, T=0.0), "T must be"),
    (dict(loss="L2", lr=1e-3, sigma=-1.0), "sigma must"), (dict(loss="L2", lr=1e-3, fraction=2.0), "fraction must")])
def test_student_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Student(**kwargs)


def test_student_names():
    assert str(Student("labels", 1e-3)) == "labels" and str(Student("KD", 1e-3, T=4.0)) == "KD, T=4"
    assert str(Student("L2", 1e-3)) == "L2, clean" and str(Student("L2", 1e-3, dropout=0.1)) == "L2, clean, dropout 0.1"
    assert str(Student("L2", 1e-3, sigma=0.1, fraction=0.5)) == "L2, sigma 0.1 (var 0.01), fraction 0.5"


def test_score_trains_and_scores_one_split(real_data, capsys):
    s = _tiny()
    d = noisy.load_data(s)
    teacher = models.LeNetMNIST().eval()
    data = noisy.student_data(replace(s, student_subset=200), d, teacher)
    assert len(data["train"]) == 3 and len(data["train"][0]) == 200 and data["val"] is d["val"]
    assert torch.equal(data["train"][2], train.predict_logits(teacher, d["train"][0][:200]))
    r = noisy.score(s, data, Student("labels", 1e-3), 1, "val")
    m = noisy.train_student(s, train.cross_entropy, data["train"], 1, 1e-3)
    assert r["acc"] == train.evaluate(m, *d["val"])[1] and r["split"] == "val" and r["seed"] == 1
    assert capsys.readouterr().out.count("\n") == 1  # one line per student
    with pytest.raises(ValueError, match="split must be"):
        noisy.score(s, data, Student("labels", 1e-3), 1, "train")


def test_dataset_teacher_checkpoint(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    s = replace(_tiny("cifar10"), subset=200)
    _, info = noisy.dataset_teacher(s, progress=False)
    assert not info["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 1
    _, info = noisy.dataset_teacher(s, progress=False)  # second call: from the checkpoint
    assert info["loaded"]
    s2 = replace(s, teacher=replace(s.teacher, epochs=2))
    _, info2 = noisy.dataset_teacher(s2, progress=False)  # other settings: another file, the first kept
    assert not info2["loaded"] and len(list(tmp_path.glob("noisy-teacher-cifar10-*.pt"))) == 2


def test_grid_steps_and_choices():
    assert noisy.halve(0.4) == 0.2 and noisy.halve(0.05) == 0.0
    assert noisy.T_below(2.0) == 1.0 and noisy.T_below(1.0) is None
    assert noisy.T_above(32.0) == 64.0 and noisy.T_above(noisy.KD_T_TOP) is None
    recs = {0.0: {"acc": 0.9}, 0.1: {"acc": 0.8}, 0.3: {"acc": 0.85}}
    found = {"records": recs, "best": 0.0}
    assert noisy.best_record(found) is recs[0.0] and noisy.best_record(found, above_zero=True) is recs[0.3]
    a, b = {"acc": 0.5}, {"acc": 0.5}
    assert noisy.better(a, b) is a and noisy.better(a, {"acc": 0.6})["acc"] == 0.6
    assert noisy.grids().lr_factors[0] == 1.0


# ---- grid search, and the expected update under SGD and Adam --------------------------------

def test_search_extends_the_grid_until_the_best_is_inside():
    calls = []

    def run(v):
        calls.append(v)
        return {"acc": -(v - 0.4) ** 2}
    found = noisy.search(run, [0.1, 0.2], below=lambda v: v / 2, above=lambda v: 2 * v)
    assert calls == [0.1, 0.2, 0.4, 0.8] and found["best"] == 0.4 and found["edge"] is None
    calls.clear()
    found = noisy.search(run, [0.1, 0.2], above=lambda v: 2 * v, max_extra=1)  # not allowed far enough
    assert calls == [0.1, 0.2, 0.4] and found["best"] == 0.4 and found["edge"] == "upper"
    calls.clear()
    known = {0.0: {"acc": 1.0}}  # a known point (the clean teacher) that beats the grid: no extension
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
    sgd = {sg: noisy.scalar_demo("sgd", sg, 0.5, repeats=2000, steps=100) for sg in (0.0, 1.0)}
    adam = {sg: noisy.scalar_demo("adam", sg, 0.5, repeats=2000, steps=100) for sg in (0.0, 1.0)}
    se = float(sgd[1.0].std()) / 2000 ** 0.5
    assert abs(float(sgd[1.0].mean()) - float(sgd[0.0].mean())) < 4 * se
    assert float(sgd[0.0].mean()) == pytest.approx(5 * (1 - 0.99 ** 100), rel=1e-9)  # s_k = z (1 - (1 - lr)^k)
    assert float(adam[1.0].mean()) < float(adam[0.0].mean()) - 10 * float(adam[1.0].std()) / 2000 ** 0.5
    with pytest.raises(ValueError, match="optimizer must be"):
        noisy.scalar_demo("rmsprop", 0.5, 0.5)


def test_mean_update_of_a_real_model(monkeypatch):
    """A linear student: under SGD the mean displacement is the clean one (the step is linear in the
    noise), so the ratio is 1 within its error; under Adam it is clearly below 1."""
    torch.manual_seed(0)
    x, v = torch.randn(256, 20), 4 * torch.randn(256, 10)
    make = lambda: torch.nn.Linear(20, 10)
    monkeypatch.setitem(noisy.MEAN_UPDATE, "steps", 6)
    monkeypatch.setitem(noisy.MEAN_UPDATE, "batch_size", 64)
    sgd = noisy.mean_update(make, (x, v), ("sgd", 0.05), (1.0, 1.0), repeats=64)
    adam = noisy.mean_update(make, (x, v), ("adam", 0.01), (1.0, 1.0), repeats=64)
    assert abs(sgd["ratio"] - 1) < 4 * sgd["se"] + 1e-6
    assert adam["ratio"] < 1 - 4 * adam["se"]
    clean = noisy.mean_update(make, (x, v), ("adam", 0.01), (0.0, 1.0), repeats=2)
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
