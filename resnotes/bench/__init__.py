"""Benchmarks and the prepared GPU check (scripts, not timed tests).

- ``python -m resnotes.bench loader``: our on-device data path against
  torchvision's ``DataLoader`` with PIL transforms (``resnotes.bench.loader``);
- ``python -m resnotes.bench gpu --out DIR --archive cifar10-jpeg.tar.gz``: the
  check to run first on a lent GPU machine, within a time budget
  (``resnotes.bench.gpu``).

Every bad argument is refused before any data, GPU or model is touched (exit
status 2); a failure at run time exits 1, an interruption 130.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ..cli import at_least, positive_number
from .gpu import CHAPTER_MODELS, gpu_check
from .loader import BenchError, loader_benchmark, report

__all__ = ["CHAPTER_MODELS", "BenchError", "gpu_check", "loader_benchmark", "main"]


def _model_name(text: str) -> str:
    from ..models import get_spec

    try:
        get_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _device(text: str) -> str:
    try:
        device = torch.device(text) if text != "auto" else None
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}; use auto, cpu, cuda or mps"
        ) from None
    if device is not None and device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"{text!r}: no CUDA GPU is available here (use cpu or auto)"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    from ..config import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m resnotes.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    loader = sub.add_parser(
        "loader", help="our data path against torchvision's DataLoader"
    )
    loader.add_argument(
        "--model", default="preact_resnet110", type=_model_name, metavar="NAME"
    )
    loader.add_argument("--batch-size", type=at_least(1), default=128)
    loader.add_argument(
        "--steps",
        type=at_least(1),
        default=20,
        help="training steps timed per pipeline (after 3 warm-up steps)",
    )
    loader.add_argument(
        "--workers", type=at_least(0), default=0, help="DataLoader workers"
    )
    loader.add_argument(
        "--device", default="auto", type=_device, help="auto, cpu, cuda or mps"
    )
    loader.add_argument(
        "--json", default=None, help="also write the figures to this JSON file"
    )
    gpu = sub.add_parser("gpu", help="the prepared GPU check, within a time budget")
    gpu.add_argument(
        "--models",
        nargs="+",
        default=list(CHAPTER_MODELS),
        type=_model_name,
        metavar="NAME",
        help=f"default: {' '.join(CHAPTER_MODELS)}",
    )
    gpu.add_argument(
        "--epochs", type=at_least(1), default=2, help="epochs per model (default: 2)"
    )
    gpu.add_argument(
        "--profile",
        default="fast",
        choices=list(PROFILES),
        help="profile for the models' data and schedule (default: fast)",
    )
    gpu.add_argument(
        "--out", required=True, help="folder for summary.json, log.txt and records/"
    )
    gpu.add_argument(
        "--archive",
        default=None,
        help="the offline cifar10-jpeg.tar.gz, extracted outside OUT",
    )
    gpu.add_argument(
        "--budget-minutes",
        type=positive_number,
        default=6.0,
        help="everything, data included, ends within this (default: 6)",
    )
    gpu.add_argument(
        "--parts", nargs="+", choices=["checks", "models"], default=["checks", "models"]
    )
    gpu.add_argument(
        "--allow-cpu", action="store_true", help="run without a GPU (testing)"
    )
    return parser


class _Tee:
    """Write what is printed to the terminal and to a log file."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _measured_anything(summary_path, budget_minutes: float) -> int:
    """0 when the check measured something beyond the machine and the data; 1, with
    a message, when its budget left no time for any part or model."""
    import json

    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return 0  # gpu_check said what went wrong
    parts = {
        k: v
        for k, v in summary.get("parts", {}).items()
        if k not in ("environment", "data")
    }
    ran = [
        v
        for v in [*parts.values(), *summary.get("models", {}).values()]
        if isinstance(v, dict)
    ]
    if ran or "data" not in summary.get("parts", {}):
        return 0
    print(
        f"error: --budget-minutes {budget_minutes:g} left no time to check anything "
        f"(see {summary_path}); give it a few minutes",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    import tarfile

    from ..datasets import DataFormatError, DataNotFoundError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "loader":
            r = loader_benchmark(
                args.model, args.batch_size, args.steps, args.workers, args.device
            )
            report(r, args.json)
            return 0
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "log.txt", "a") as log:
            stdout, sys.stdout = sys.stdout, _Tee(sys.stdout, log)
            try:
                gpu_check(
                    args.models,
                    args.epochs,
                    args.profile,
                    out,
                    args.budget_minutes,
                    args.allow_cpu,
                    args.archive,
                    parts=tuple(args.parts),
                )
            finally:
                sys.stdout = stdout
        return _measured_anything(out / "summary.json", args.budget_minutes)
    except (
        BenchError,
        DataNotFoundError,
        DataFormatError,
        OSError,
        tarfile.TarError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
