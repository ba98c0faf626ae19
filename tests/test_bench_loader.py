"""bench loader names a torchvision that cannot be imported, as training does."""

import builtins

from conftest import write_cifar10_pickles

from resnotes import bench


def test_a_broken_torchvision_is_one_line_not_a_traceback(data_env, monkeypatch, capsys):
    _, external = data_env
    write_cifar10_pickles(external, per_class_train=20, per_class_test=4)
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    code = bench.main(["loader", "--model", "preact_resnet20", "--batch-size", "8", "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "torchvision cannot be imported" in err and "nms" in err
    assert "Traceback" not in err
