"""Interrupted training, checkpoint safety, and clear errors for bad input."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import write_imagefolder
from resnotes.datasets import DataFormatError, DataNotFoundError, load_raw
from resnotes.models.preact_resnet import PreActResNet
from resnotes.checkpoint import CheckpointError
from resnotes.cli import main
from resnotes.train import TrainConfig, fit

def quiet(**kw):
    return TrainConfig(progress=False, **kw)

# --------------------------------------------------------------------------
# Reproducible runs (interruption and fault injection: test_checkpoint.py)
# --------------------------------------------------------------------------

def test_same_seed_same_history_on_cpu(tiny_cifar10):
    def run():
        torch.manual_seed(123)  # fit reseeds everything from config.seed
        return fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=2, batch_size=16, seed=4))

    a, b = run(), run()
    assert [e["train_loss"] for e in a.epochs] == [e["train_loss"] for e in b.epochs]
    assert a.test_acc == b.test_acc

def test_checkpoint_holds_everything_needed_to_resume(tiny_cifar10, tmp_path):
    import json

    fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=1, batch_size=16, checkpoint_dir=str(tmp_path)))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scaler", "epoch", "history", "best_state", "rng", "run"} <= set(ckpt)
    assert {"torch", "numpy", "python"} <= set(ckpt["rng"])
    run = json.loads(ckpt["run"])
    assert run["config"]["seed"] == 0 and run["precision"] == "fp32" and run["world_size"] == 1
    assert "90 train" in run["data"] and ckpt["epoch"] == 1

def test_resuming_with_another_seed_is_refused(tiny_cifar10, tmp_path):
    fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=1, batch_size=16, checkpoint_dir=str(tmp_path), seed=1))
    with pytest.raises(CheckpointError, match="seed: 1 in the checkpoint, 2 now"):
        fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=2, batch_size=16, checkpoint_dir=str(tmp_path), seed=2))

# --------------------------------------------------------------------------
# Safe checkpoints
# --------------------------------------------------------------------------

def test_corrupt_checkpoint_names_the_file_and_keeps_the_previous_one(tiny_cifar10, tmp_path):
    fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=2, batch_size=16, checkpoint_dir=str(tmp_path)))
    last, previous = tmp_path / "last.pt", tmp_path / "previous.pt"
    assert torch.load(previous, weights_only=True)["epoch"] == 1
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointError, match=r"cannot read the checkpoint .*last\.pt.*previous\.pt"):
        fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=3, batch_size=16, checkpoint_dir=str(tmp_path)))
    assert torch.load(previous, weights_only=True)["epoch"] == 1  # kept as it was

class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["RESNOTES_PWNED"]),))

def test_a_checkpoint_carrying_a_malicious_pickle_is_refused(tiny_cifar10, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("RESNOTES_PWNED", str(marker))
    with open(tmp_path / "last.pt", "wb") as f:
        pickle.dump({"model": _Payload(), "epoch": 1}, f, protocol=2)
    with pytest.raises(CheckpointError, match="refusing to load"):
        fit(PreActResNet(depth=8), tiny_cifar10, quiet(epochs=2, batch_size=16, checkpoint_dir=str(tmp_path)))
    assert not marker.exists(), "the pickle's code ran"

# --------------------------------------------------------------------------
# Clear errors for bad input
# --------------------------------------------------------------------------

def test_grayscale_images_are_rejected(data_env):
    from PIL import Image

    _, external = data_env
    write_imagefolder(external)
    Image.new("L", (32, 32)).save(external / "train" / "dog" / "gray.png")
    with pytest.raises(DataFormatError, match="is a 32x32 L image; CIFAR images must be 32x32 RGB"):
        load_raw("cifar10", download=False)

def test_an_extra_class_folder_is_rejected(data_env):
    _, external = data_env
    write_imagefolder(external)
    (external / "test" / "unicorn").mkdir()
    (external / "train" / "unicorn").mkdir()
    with pytest.raises(DataFormatError, match="has 11 class folders; CIFAR-10 needs 10"):
        load_raw("cifar10", download=False)

def test_an_empty_class_folder_is_rejected(data_env):
    _, external = data_env
    write_imagefolder(external)
    for image in (external / "test" / "cat").iterdir():
        image.unlink()
    with pytest.raises(DataFormatError, match="test/cat/ holds no images"):
        load_raw("cifar10", download=False)

def test_an_empty_data_folder_is_not_found(data_env):
    with pytest.raises(DataNotFoundError, match="CIFAR-10 was not found"):
        load_raw("cifar10", download=False)

@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "plain21"], "unknown model 'plain21'. Did you mean: plain20"),
        (["--model", "plain20", "--epochs", "0"], "--epochs: must be an integer >= 1"),
        (["--model", "plain20", "--batch-size", "-3"], "--batch-size: must be an integer >= 1"),
        (["--model", "plain20", "--lr", "0"], "--lr: must be a number > 0"),
        (["--model", "plain20", "--seed", "-1"], "--seed: must be an integer >= 0"),
        (["--model", "plain20", "--train-per-class", "0"], "--train-per-class: must be an integer >= 1"),
        (["--model", "plain20", "--profile", "quick"], "invalid choice: 'quick'"),
        (["--model", "plain20", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    ],
)
def test_command_line_validates_every_argument(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err

def test_command_line_help_lists_models_and_profiles(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for word in ["preact_resnet110", "pyramidnet110_a48", "{smoke,demo,fast,paper}", "--train-per-class", "--no-resume"]:
        assert word in out

def test_unknown_profile_in_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("RESNOTES_PROFILE", "quick")
    with pytest.raises(SystemExit):
        main(["--model", "plain20"])
    assert "unknown profile 'quick'; valid profiles: smoke, demo, fast, paper" in capsys.readouterr().err
