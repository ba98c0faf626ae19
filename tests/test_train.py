import json
import math

import pytest
import torch

from conftest import real_cifar10_available, write_cifar10_pickles
from resnotes.datasets import load_cifar
from resnotes.models.preact_resnet import PreActResNet
from resnotes.config import PROFILES, get_profile
from resnotes.cli import main
from resnotes.train import History, TrainConfig, fit, learning_rate


def quiet(**kw):
    return TrainConfig(progress=False, **kw)


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    cfg = TrainConfig(epochs=8, lr=0.1, schedule="step")
    lrs = [learning_rate(cfg, e * 10, 10) for e in range(8)]
    assert lrs[:4] == [0.1] * 4
    assert math.isclose(lrs[4], 0.01) and math.isclose(lrs[5], 0.01)
    assert math.isclose(lrs[6], 0.001) and math.isclose(lrs[7], 0.001)


def test_cosine_and_onecycle_shapes():
    cos = TrainConfig(epochs=10, lr=0.2, schedule="cosine", warmup_epochs=1)
    lrs = [learning_rate(cos, s, 10) for s in range(100)]
    assert math.isclose(lrs[0], 0.02) and max(lrs) == pytest.approx(0.2) and lrs[-1] < 1e-3
    one = TrainConfig(epochs=10, lr=0.2, schedule="onecycle")
    lrs = [learning_rate(one, s, 10) for s in range(100)]
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.2 / 25) and 25 <= peak <= 35 and lrs[-1] < 1e-3
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"schedule": "linear"}, "unknown schedule 'linear'; valid schedules: step, cosine, onecycle"),
        ({"lr": 0}, "lr must be in \\(0, 1e\\+30\\]"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_profiles(monkeypatch):
    monkeypatch.setenv("RESNOTES_PROFILE", "demo")
    assert get_profile().name == "demo"
    assert get_profile("paper").schedule == "step"
    with pytest.raises(ValueError, match="unknown profile 'quick'; valid profiles: smoke, demo, fast, paper"):
        get_profile("quick")
    assert PROFILES["smoke"].pick(smoke=8, demo=32, fast=56, paper=110) == 8
    cfg = PROFILES["paper"].train_config(seed=3)
    assert cfg.epochs == 164 and cfg.profile == "paper" and cfg.seed == 3
    # The warm-up is a fraction of the run: it follows an epochs override.
    assert PROFILES["demo"].train_config(epochs=6).warmup_epochs == pytest.approx(1.5)
    assert PROFILES["demo"].train_config(epochs=6, warmup_epochs=2).warmup_epochs == 2


@pytest.mark.skipif(not real_cifar10_available(), reason="no real CIFAR-10 copy in $RESNOTES_DATA or data/")
def test_loss_falls_on_a_small_real_subset():
    data = load_cifar("cifar10", train_per_class=40, test_per_class=10)
    torch.manual_seed(0)
    history = fit(PreActResNet(depth=8), data, quiet(epochs=4, batch_size=50, lr=0.05, schedule="cosine"))
    losses = history.column("train_loss")
    assert losses[-1] < losses[0] - 0.1, losses
    assert history.test_acc is not None and history.best_epoch in range(1, 5)


def test_resumed_run_matches_an_uninterrupted_one(tiny_cifar10, tmp_path):
    def run(epochs, folder):
        torch.manual_seed(1)
        model = PreActResNet(depth=8)
        history = fit(model, tiny_cifar10, quiet(epochs=epochs, batch_size=16, checkpoint_dir=str(folder), schedule="step", seed=5))
        return model, history

    straight_model, straight = run(3, tmp_path / "straight")
    # Stop after 2 of 3 epochs ("interrupted"), then resume with the full schedule.
    _cut_short(tmp_path / "resumed", tiny_cifar10)
    resumed_model, resumed = run(3, tmp_path / "resumed")
    assert len(resumed.epochs) == 3
    for a, b in zip(straight.epochs, resumed.epochs):
        assert a["train_loss"] == b["train_loss"] and a["val_acc"] == b["val_acc"]
    for (name, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert straight.test_acc == resumed.test_acc


def _cut_short(folder, data):
    """Train the first 2 epochs of the same 3-epoch run, leaving its checkpoint behind."""
    import resnotes.runs as rruns

    class Stop(Exception):
        pass

    real_save = rruns.save_checkpoint

    def save_then_stop(folder, state):
        real_save(folder, state)
        if state["epoch"] == 2:
            raise Stop

    torch.manual_seed(1)
    rruns.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            fit(PreActResNet(depth=8), data, quiet(epochs=3, batch_size=16, checkpoint_dir=str(folder), schedule="step", seed=5))
    finally:
        rruns.save_checkpoint = real_save


def test_non_finite_loss_stops_naming_epoch_and_step(tiny_cifar10):
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3 * 32 * 32, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) * float("nan")

    with pytest.raises(FloatingPointError, match="at epoch 1, step 1"):
        fit(Broken(), tiny_cifar10, quiet(epochs=1, batch_size=16))


def test_history_serialises_to_json(tiny_cifar10, tmp_path):
    history = fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=1, batch_size=32, profile="smoke"))
    path = tmp_path / "h.json"
    history.to_json(path)
    again = History.from_json(path)
    assert again == history
    record = json.loads(path.read_text())["epochs"][0]
    assert set(record) == {"epoch", "train_loss", "train_acc", "val_acc", "lr", "seconds", "images_per_s", "eval_seconds"}
    assert "smoke" in again.summary() and again.meta["hardware"]


def test_command_line_trains_and_writes_history(data_env, tmp_path, capsys):
    _, external = data_env
    write_cifar10_pickles(external, per_class_train=20, per_class_test=10)
    assert main(["--model", "preact_resnet20", "--profile", "smoke", "--epochs", "1", "--out", str(tmp_path)]) == 0
    saved = History.from_json(tmp_path / "preact_resnet20-cifar10-smoke-seed0" / "history.json")
    assert saved.meta["model"] == "preact_resnet20" and len(saved.epochs) == 1
    assert "best val" in capsys.readouterr().out
