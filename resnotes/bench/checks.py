"""The checks a first GPU run must make, each short and each a dictionary of what
it measured (``bench gpu`` writes them into its summary):

- ``chapter_pattern``: what a chapter does: ``fit``, then a lesion study, hook
  helpers and cost counts on the model ``fit`` returns, with the chapter's own
  batches built on the CPU;
- ``host_syncs``: one epoch through ``fit`` in fp16 and in bf16 with CUDA's sync
  debug mode on inside the training epoch, counting where the host waited;
- ``overflowing_first_steps``: fp16 with a gradient scaler whose first steps
  overflow (the scale starts at 2**24) must still train;
- ``compile_on_and_off``: the same short run eager and compiled.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
import warnings

import torch

from .. import train as rtrain
from ..analysis import (
    gradient_norms_per_unit,
    lesion_study,
    training_step_memory,
    unit_output_shapes,
)
from ..batches import DeviceBatches
from ..config import make_config
from ..models import count_flops, create_model


def _config(tiny: bool, **overrides):
    """The fast profile's recipe at a check's sizes (``tiny``: a CPU's)."""
    sizes = {"batch_size": 32 if tiny else 128, "progress": False}
    return make_config("preact_resnet20", "fast", **{**sizes, **overrides})


def dynamo_graphs() -> int:
    """Graphs torch.compile has built in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"].get("unique_graphs", 0))


def chapter_pattern(data, tiny: bool) -> dict:
    """Train, then analyse the returned model as the chapters do (CPU batches)."""
    results = {}
    models = (
        ("preact_resnet20", {}),
        ("resnet110_stochastic_depth", {"depth": 8 if tiny else 20}),
    )
    for name, kwargs in models:
        torch.manual_seed(0)
        model = create_model(name, **kwargs)
        config = _config(tiny, epochs=1)  # the recipe is the same for every model
        history = rtrain.fit(model, data, config, name=name)
        before = dynamo_graphs()
        batches = DeviceBatches(
            data.test_images,
            data.test_labels,
            500,
            mean=data.mean,
            std=data.std,
            train=False,
        )
        images, labels = next(iter(batches))
        n = len(data.test_labels)
        again = rtrain.evaluate(model, batches)
        results[name] = {
            "returned_module": type(model).__name__,
            "compiled_run": history.meta["compiled"],
            "test_acc": history.test_acc,
            "evaluate_cpu_batches_agrees": abs(again - history.test_acc) <= 2 / n,
            "lesion_first_3_units": lesion_study(model, model.units()[:3], batches),
            "unit_output_shapes": len(unit_output_shapes(model, model.units())),
            "gradient_norms": len(
                gradient_norms_per_unit(model, model.units(), images[:64], labels[:64])
            ),
            "gflops_per_image": count_flops(model) / 1e9,
            "training_step_memory_mib": training_step_memory(model, 128) / 2**20,
            "graphs_compiled_by_the_helpers": dynamo_graphs() - before,
        }
    return results


@contextlib.contextmanager
def _counting_syncs(counts: collections.Counter, on_cuda: bool):
    """Count CUDA's synchronisation warnings inside ``train_one_epoch`` only."""
    original = rtrain.train_one_epoch

    def watched(*args, **kwargs):
        if on_cuda:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
        try:
            return original(*args, **kwargs)
        finally:
            if on_cuda:
                torch.cuda.set_sync_debug_mode(0)

    rtrain.train_one_epoch = watched
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        rtrain.train_one_epoch = original
    for w in caught:
        if "synchroniz" in str(w.message):
            counts[f"{os.path.basename(w.filename)}:{w.lineno}"] += 1


def host_syncs(data, precision: str, tiny: bool) -> dict:
    """One epoch in ``precision``; the host syncs inside it, and where they were."""
    on_cuda = torch.cuda.is_available()
    if precision == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
        return {"skipped": "this GPU has no bf16"}
    torch.manual_seed(0)
    model = create_model("preact_resnet20", depth=8 if tiny else 20)
    batch = 32 if tiny else 128
    config = _config(tiny, epochs=1, precision=precision, compile=False)
    counts = collections.Counter()
    with _counting_syncs(counts, on_cuda):
        history = rtrain.fit(model, data, config, name=f"sync-check-{precision}")
    steps = len(data.train_labels) // batch
    # The NaN check after the first step and every CHECK_EVERY steps; fp16's
    # scaler reads one flag per step to skip an overflowing one.
    expected = (
        1 + steps // rtrain.CHECK_EVERY + 1 + (steps if precision == "fp16" else 0)
    )
    syncs = sum(counts.values())
    verdict = "ok" if syncs <= expected else "too many: see where"
    return {
        "precision": history.meta["precision"],
        "steps": steps,
        "syncs": syncs if on_cuda else "not measured (no CUDA)",
        "expected_at_most": expected,
        "verdict": verdict if on_cuda else "not measured (no CUDA)",
        "where": dict(counts.most_common(8)),
        "loss": history.epochs[-1]["train_loss"],
    }


def overflowing_first_steps(data, tiny: bool) -> dict:
    """fp16 whose gradient scaler starts at 2**24: the first steps overflow and are
    skipped. The run must go on training (a fused SGD under the scaler did not)."""
    real = torch.amp.GradScaler
    torch.amp.GradScaler = lambda *a, **k: real(*a, **{"init_scale": 2.0**24, **k})
    try:
        torch.manual_seed(0)
        model = create_model("preact_resnet20", depth=8 if tiny else 20)
        config = _config(tiny, epochs=1, precision="fp16", compile=False)
        history = rtrain.fit(model, data, config, name="fp16-overflow-check")
        return {"trained": True, "loss": history.epochs[-1]["train_loss"]}
    except FloatingPointError as exc:
        return {"trained": False, "error": str(exc)}
    finally:
        torch.amp.GradScaler = real


def compile_on_and_off(data, tiny: bool) -> dict:
    """Two epochs eager, then two compiled: the first epoch pays for compiling. On a
    CPU (``tiny``) it compiles with the ``aot_eager`` backend: the plumbing only."""
    from .. import engine

    out = {"backend": "aot_eager (plumbing only)" if tiny else "inductor"}
    saved = dict(engine.COMPILE_OPTIONS)
    if tiny:
        engine.COMPILE_OPTIONS["backend"] = "aot_eager"
    try:
        _compile_runs(data, tiny, out)
    finally:
        engine.COMPILE_OPTIONS.clear()
        engine.COMPILE_OPTIONS.update(saved)
    eager, compiled = (
        out["eager"]["images_per_s"][-1],
        out["compiled"]["images_per_s"][-1],
    )
    out["steady_speedup"] = compiled / eager
    return out


def _compile_runs(data, tiny: bool, out: dict) -> None:
    for compiled in (False, True):
        torch.manual_seed(0)
        model = create_model("preact_resnet20", depth=8 if tiny else 56)
        config = _config(tiny, epochs=2, compile=compiled)
        start = time.perf_counter()
        history = rtrain.fit(model, data, config, name="compile-check")
        out["compiled" if compiled else "eager"] = {
            "epoch_seconds": history.column("seconds"),
            "images_per_s": history.column("images_per_s"),
            "whole_run_seconds": time.perf_counter() - start,
        }
