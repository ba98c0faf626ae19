"""--model-arg values are read by the type the factory declares: "false" is False."""

import argparse

import pytest

from resnotes import cli
from resnotes.models import count_parameters, create_model


def parse(model, *texts):
    parser = argparse.ArgumentParser()
    return cli._model_args(parser, model, [cli.model_arg(t) for t in texts])


@pytest.mark.parametrize("text", ["false", "False", "FALSE", "no", "0"])
def test_false_in_any_spelling_builds_the_plain_network(text):
    kwargs = parse("preact_resnet20", f"residual={text}", "depth=8")
    assert kwargs == {"residual": False, "depth": 8}
    plain = count_parameters(create_model("plain20", depth=8))
    assert count_parameters(create_model("preact_resnet20", **kwargs)) == plain
    assert count_parameters(create_model("preact_resnet20", depth=8)) != plain


def test_each_declared_type_and_quoted_text():
    assert parse("pyramidnet110_a48", "bottleneck=yes", "alpha=45", "depth=32") == {"bottleneck": True, "alpha": 45, "depth": 32}
    assert parse("pyramidnet110_a48", "alpha=4.5")["alpha"] == 4.5
    assert parse("attention92", "attention='nal'", "bottom_units=2") == {"attention": "nal", "bottom_units": 2}
    assert parse("resnet110_stochastic_depth", "final_survival=0.8") == {"final_survival": 0.8}


@pytest.mark.parametrize(
    "model, text, fact",
    [
        ("preact_resnet20", "residual=", "residual needs a value"),
        ("preact_resnet20", "residual=maybe", "residual takes true or false"),
        ("preact_resnet20", "bottleneck=2", "bottleneck takes true or false"),
        ("preact_resnet20", "depth=3.5", "depth takes an integer"),
        ("preact_resnet20", "unit=x", "unit cannot be set"),
        ("resnet110_stochastic_depth", "final_survival=nan", "final_survival takes a finite number"),
        ("resnet110_stochastic_depth", "final_survival=inf", "final_survival takes a finite number"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_with_exit_2_naming_the_argument(model, text, fact, capsys):
    with pytest.raises(SystemExit) as stop:
        parse(model, text)
    assert stop.value.code == 2 and fact in capsys.readouterr().err


def test_a_huge_value_is_refused_before_it_is_read():
    with pytest.raises(argparse.ArgumentTypeError, match="at most 100 characters"):
        cli.model_arg("depth=" + "9" * 100_000)
