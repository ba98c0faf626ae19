"""The command line ``python -m resnotes.train``, and the argument types it shares
with ``python -m resnotes.bench``.

Every bad input ends in a short message on stderr, never a traceback. Exit
status: 0 done, 1 a failure at run time (data, checkpoint, disk), 2 a bad
argument, 130 interrupted by Ctrl-C, 143 stopped by SIGTERM (what ``timeout``
and job schedulers send). Importing this module imports only the standard
library, so that an interrupt during the heavy imports can be handled too.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that a run stops the way Ctrl-C stops it."""


def _on_sigterm(signum, frame):
    raise Terminated


def _stop_before_main(signum, frame):
    terminated = signum == signal.SIGTERM
    how = "Stopped by SIGTERM" if terminated else "Interrupted"
    print(f"\n{how} before training started; nothing was written.", file=sys.stderr)
    sys.stderr.flush()
    os._exit(143 if terminated else 130)


def end_quietly_on_interrupt() -> None:
    """Ctrl-C or SIGTERM before ``main`` runs (during the imports): a one-line message
    and exit status 130 or 143, instead of a traceback, since nothing was written
    yet. The handler exits at once: an exception raised inside a library's import
    can be swallowed there, leaving a half-imported module that fails later. An
    ignored SIGINT (a background job's) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop_before_main)
    signal.signal(signal.SIGTERM, _stop_before_main)


def at_least(minimum: int, below: int | None = None, below_label: str = ""):
    """An integer >= ``minimum`` (and < ``below``, shown as ``below_label``, when
    given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}, got {text}"
            )
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(
                f"must be an integer < {below_label or below}, got {text}"
            )
        return value

    return parse


def positive_number(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number > 0, got {text!r}"
        ) from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


MAX_MODEL_ARG = 100  # characters of one --model-arg value
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")


def model_arg(text: str) -> tuple[str, str]:
    """NAME=VALUE for the model's factory, as text: ``_model_args`` reads the value
    by the type the factory declares for NAME."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"must be NAME=VALUE, e.g. depth=32; got {text[:60]!r}"
        )
    if len(value) > MAX_MODEL_ARG:
        raise argparse.ArgumentTypeError(
            f"{name}: a value of at most {MAX_MODEL_ARG} characters; got {len(value):,}"
        )
    return name, value


def typed_value(name: str, text: str, kind) -> object:
    """``text`` read as the type ``kind`` that the factory declares for ``name``:
    booleans from true/false, yes/no or 1/0 in any case, integers, finite numbers
    (an integer stays an integer), text (quotes around it are dropped);
    ``ValueError`` naming the argument and the values it takes otherwise."""
    import math
    import types
    import typing

    word = text.strip()
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        kind = options[0] if len(options) == 1 else None
    if not word:
        raise ValueError(f"{name} needs a value: {name}=VALUE")
    if kind is bool:
        if word.lower() in TRUE:
            return True
        if word.lower() in FALSE:
            return False
        raise ValueError(
            f"{name} takes true or false (or yes/no, 1/0); got {word[:40]!r}"
        )
    if kind is int:
        try:
            return int(word)
        except ValueError:
            raise ValueError(f"{name} takes an integer; got {word[:40]!r}") from None
    if kind is float:
        try:
            value = int(word)
        except ValueError:
            try:
                value = float(word)
            except ValueError:
                value = None
        if value is None or not math.isfinite(value):
            raise ValueError(f"{name} takes a finite number; got {word[:40]!r}")
        return value
    if kind is str:
        if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
            word = word[1:-1]
        return word
    raise ValueError(f"{name} cannot be set from the command line")


def build_parser() -> argparse.ArgumentParser:
    from .config import PRECISIONS, PROFILES
    from .models import list_models

    parser = argparse.ArgumentParser(
        prog="python -m resnotes.train",
        description=(
            "Train a registered model on CIFAR-10 or CIFAR-100 under a run profile. "
            "The run writes OUT/<model>-<dataset>-<profile>-seed<seed>/last.pt after "
            "every epoch (and keeps the one before as previous.pt) and history.json at "
            "the end; the same command resumes it."
        ),
        epilog=(
            "Multi-GPU: torchrun --nproc_per_node=K -m resnotes.train ... runs "
            "DistributedDataParallel; each process trains on its own shard of every "
            "epoch, --batch-size stays the global batch, and only rank 0 writes "
            "checkpoints, logs and the ledger. Exit status: 0 done, 1 a failure at run "
            "time (data, checkpoint, disk), 2 a bad argument, 130 interrupted, 143 "
            "stopped by SIGTERM (run the same command to resume)."
        ),
    )
    add = parser.add_argument
    add(
        "--model",
        required=True,
        metavar="NAME",
        help=f"a registered model: {', '.join(list_models())}",
    )
    add("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    add(
        "--profile",
        default=None,
        choices=list(PROFILES),
        help="default: $RESNOTES_PROFILE, else fast on a GPU and demo otherwise; under "
        "paper the model's own published recipe applies",
    )
    add("--epochs", type=at_least(1), help="override the profile's number of epochs")
    add("--batch-size", type=at_least(1), help="override the profile's batch size")
    add("--lr", type=positive_number, help="override the profile's peak learning rate")
    add(
        "--train-per-class",
        type=at_least(1),
        help="images per class drawn from train (10%% of them held out for validation)",
    )
    add("--test-per-class", type=at_least(1), help="images per class drawn from test")
    add(
        "--seed",
        type=at_least(0, below=2**63, below_label="2**63"),
        default=0,
        help="seed for the weights, the data order and the augmentation (default: 0)",
    )
    add(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 on GPUs of compute capability >= 8.0, fp16 with a gradient "
        "scaler below, fp32 on the CPU",
    )
    add(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the training step (default: on for CUDA under paper)",
    )
    add(
        "--deterministic",
        action="store_true",
        help="deterministic GPU kernels where they exist (slower)",
    )
    add("--out", default="runs", help="folder for the run folders (default: runs/)")
    add(
        "--no-resume",
        action="store_true",
        help=(
            "start afresh; an earlier run's files move to a replaced-<time>/ subfolder"
        ),
    )
    add(
        "--ledger",
        default=None,
        metavar="DIR",
        help="also write the run's results record (JSON) into DIR, e.g. results/",
    )
    add(
        "--model-arg",
        type=model_arg,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an argument of the model's factory, e.g. --model-arg depth=32 "
        "(repeatable); the run folder's name then carries it",
    )
    return parser


def _model_args(parser, name: str, pairs) -> dict:
    """``--model-arg`` pairs, checked against the factory's signature and read by
    the types it declares."""
    import inspect
    import typing

    from .models import get_spec

    factory = get_spec(name).factory
    allowed = set(inspect.signature(factory).parameters) - {"num_classes"}
    given = dict(pairs)
    unknown = sorted(set(given) - allowed)
    if unknown:
        parser.error(
            f"argument --model-arg: {name} takes {', '.join(sorted(allowed))}; "
            f"got {', '.join(unknown)}"
        )
    hints = typing.get_type_hints(
        factory.__init__ if inspect.isclass(factory) else factory
    )
    values = {}
    for key, text in given.items():
        try:
            values[key] = typed_value(key, text, hints.get(key))
        except ValueError as err:
            parser.error(f"argument --model-arg: {err}")
    return values


def main(argv: list[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is _stop_before_main:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt
    signal.signal(signal.SIGTERM, _on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except KeyboardInterrupt as stop:
        return _interrupted(stop, getattr(args, "run_folder", None))


def _run(parser: argparse.ArgumentParser, args) -> int:
    from .checkpoint import CheckpointError
    from .config import get_profile, make_config
    from .datasets import NUM_CLASSES, DataFormatError, DataNotFoundError, load_cifar
    from .engine import OtherProcessFailed, distributed_context, everyone
    from .files import WriteError
    from .models import create_model, get_spec
    from .runs import RunLockedError
    from .runtime import seed_everything
    from .train import fit

    try:
        get_spec(args.model)
        model_args = _model_args(parser, args.model, args.model_arg)
        profile = get_profile(args.profile)
        config = make_config(
            args.model,
            profile,
            args.dataset,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            precision=args.precision,
            compile=args.compile,
            deterministic=args.deterministic,
            resume=not args.no_resume,
        )
    except ValueError as err:
        parser.error(str(err))
    if args.ledger and profile.name == "smoke":
        # A smoke run is a try-out, not a result: its record is kept apart, in
        # DIR/smoke/, which the book and the ledger's readers never read.
        args.ledger = str(Path(args.ledger) / "smoke")
    variant = "".join(f"-{k}{v}" for k, v in sorted(model_args.items()))
    name = f"{args.model}{variant}-{args.dataset}-{profile.name}-seed{args.seed}"
    out = Path(args.out) / name
    config.checkpoint_dir, args.run_folder = str(out), out
    seed_everything(args.seed)  # the initial weights depend on the seed too
    try:
        classes = NUM_CLASSES[args.dataset]
        model = create_model(args.model, **model_args, num_classes=classes)
    except (ValueError, TypeError) as err:
        parser.error(f"argument --model-arg: {err}")
    rank, _, world_size = distributed_context()
    try:
        problem = None
        if rank == 0:
            try:
                _check_writable(out, "--out")
                if args.ledger:
                    _check_writable(Path(args.ledger), "--ledger")
            except WriteError as exc:
                problem = exc
        if not everyone(problem is None, world_size):
            raise problem or OtherProcessFailed("rank 0 cannot write its folders")
        subset = profile.data_kwargs()
        for key in ("train_per_class", "test_per_class"):
            if getattr(args, key) is not None:
                subset[key] = getattr(args, key)
        try:
            data = load_cifar(args.dataset, **subset, seed=args.seed)
        except DataFormatError:
            raise
        except ValueError as err:
            parser.error(str(err))  # a subset that the data cannot give
        changed = {"epochs": args.epochs, "batch size": args.batch_size, "lr": args.lr}
        changed = {k: v for k, v in changed.items() if v is not None}
        if rank == 0:
            print(
                f"profile {profile.name!r}"
                + (f", overridden: {changed}" if changed else "")
            )
        try:
            history = fit(model, data, config, name=args.model)
        except ValueError as err:  # e.g. fewer training images than one batch
            return _fail(str(err))
        if rank == 0:
            history.to_json(out / "history.json")
            print(history.summary())
            if args.ledger:
                kwargs = {**get_spec(args.model).kwargs, **model_args}
                problem = _write_ledger(
                    history, model, kwargs, data.num_classes, world_size, args.ledger
                )
                if problem:
                    return _fail(f"results record not written: {problem}")
    except KeyboardInterrupt:
        raise
    except OtherProcessFailed:
        return 1  # rank 0 said why
    except (
        CheckpointError,
        RunLockedError,
        DataNotFoundError,
        DataFormatError,
        WriteError,
        FloatingPointError,
    ) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc} ({exc.filename or out})")
    finally:
        if world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _interrupted(stop: KeyboardInterrupt, run_folder: Path | None) -> int:
    """A one-line message: what was kept, and how to go on."""
    from .checkpoint import find_checkpoint

    how = "Stopped by SIGTERM" if isinstance(stop, Terminated) else "Interrupted"
    kept = find_checkpoint(run_folder) if run_folder is not None else None
    if kept is not None:  # last.pt, or previous.pt alone (between two renames)
        print(
            f"\n{how}. The checkpoint of the last finished epoch is kept in {kept}; "
            "run the same command to resume.",
            file=sys.stderr,
        )
    else:
        print(
            f"\n{how} before the first epoch finished; no checkpoint was written. "
            "Run the same command to start again.",
            file=sys.stderr,
        )
    return 143 if isinstance(stop, Terminated) else 130


def _check_writable(folder: Path, flag: str) -> None:
    """Fail before any work when ``folder`` cannot be created or written."""
    from .files import WriteError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise WriteError(
            f"{flag} {folder} cannot be written: {exc.strerror or exc}"
        ) from None


def _write_ledger(
    history, model, kwargs: dict, num_classes: int, world_size: int, folder
) -> str | None:
    """Write the run's results record into ``folder``; why not, if it was not."""
    from .ledger import LedgerError, make_record, write_record
    from .models import count_flops

    try:
        record = make_record(
            history,
            model_kwargs={**kwargs, "num_classes": num_classes},
            flops_per_image=count_flops(model),
            world_size=world_size,
        )
        print(f"results record: {write_record(record, folder)}")
    except LedgerError as exc:  # e.g. the ledger already holds this run's record
        return str(exc)
    return None
