"""What the runs allow us to say: whether a difference is beyond the test set's
sampling noise, how it varies from seed to seed, and the ledger as a table of
networks a reader can compare.

One run answers one question only: would the same trained networks rank the
same way on other test images? ``compare`` tests that (a two-proportion test).
Whether another seed (other initial weights, another data order, another
subset) would rank them the same way, one run cannot say: ``across_seeds``
shows the runs of several seeds side by side.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from .report import LINE_WIDTH, Table, wrap


def two_proportion_p(a: float, n_a: int, b: float, n_b: int) -> float:
    """Two-sided p-value of a two-proportion z-test of accuracies ``a`` on ``n_a``
    images and ``b`` on ``n_b``. On the same test images it is conservative: the
    two networks' errors are correlated, which this test ignores."""
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0 if a == b else 0.0
    z = abs(a - b) / spread
    return math.erfc(z / math.sqrt(2))


def compare(runs, a: str, b: str) -> str:
    """Two runs' test accuracies: their difference, and whether it is beyond the
    test set's sampling noise (two-proportion test at the 5% level). Overlapping
    95% intervals do not make a difference noise; and no single run says whether
    another seed would rank the networks the same way."""
    ha, hb = runs[a], runs[b]
    n_a, n_b = ha.meta["test_images"], hb.meta["test_images"]
    gap = 100 * (ha.test_acc - hb.test_acc)
    p = two_proportion_p(ha.test_acc, n_a, hb.test_acc, n_b)
    p_text = f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
    side = "beyond" if p < 0.05 else "within"
    verdict = f"{side} the test set's sampling noise ({p_text}, two-proportion test)"
    first = f"{a} against {b}: {gap:+.1f} points of test accuracy;"
    if len(first) > LINE_WIDTH:
        first = f"{a} against {b}:\n    {gap:+.1f} points of test accuracy;"
    seeds = "one seed each: whether another seed ranks them alike, this cannot say"
    return wrap(f"{first}\n    {verdict};\n    {seeds}")


def network_name(model: str, kwargs: dict[str, Any]) -> str:
    """The network a ledger record trained, as a reader names it:
    ``("pyramidnet110_a48", {"depth": 32, "alpha": 45})`` -> "PyramidNet-32 (α=45)"."""
    from .models import get_spec

    spec = get_spec(model)
    k = {**spec.kwargs, **kwargs}
    family = spec.factory.__module__.rsplit(".", 1)[-1]
    depth = k.get("depth")
    if family == "preact_resnet":
        name = "plain" if model.startswith("plain") else "ResNet"
        return f"{name}-{depth}" + (" (bottleneck)" if k.get("bottleneck") else "")
    if family == "pyramidnet":
        shape = ", bottleneck" if k.get("bottleneck") else ""
        widening = ", ×" if k.get("widening") == "multiplicative" else ""
        return f"PyramidNet-{depth} (α={k['alpha']:g}{widening}{shape})"
    if family == "densenet":
        bc = "-BC" if spec.factory.__name__ == "densenet_bc" else ""
        return f"DenseNet{bc}-{depth} (k={k['growth_rate']})"
    if family == "attention":
        return f"Attention-{depth} ({k.get('attention', 'arl').upper()})"
    if family == "stochastic_depth":
        survives = k.get("final_survival", 0.5) < 1
        return f"ResNet-{depth}, " + (
            "stochastic depth" if survives else "constant depth"
        )
    if family == "se_cbam":
        return f"ResNet-{depth} + {k['attention'].upper()}"
    if family == "wide_resnet":
        return f"WRN-{depth}-{k['widen_factor']}"
    return model


def network_kwargs(model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments that build a network, its registry entry's defaults included
    (the command line records them all, a chapter only those it sets)."""
    from .models import get_spec

    merged = {**get_spec(model).kwargs, **kwargs}
    merged.pop("num_classes", None)
    return merged


def _key(record: dict) -> tuple:
    kwargs = network_kwargs(record["model"], record["model_kwargs"])
    return (
        record["model"],
        tuple(sorted(kwargs.items())),
        record["profile"],
        record["dataset"],
    )


def across_seeds(
    ledger: list[dict], arms: dict[str, tuple[str, dict]], profile: str
) -> Table:
    """The test accuracy of each arm in every seed the ledger holds, and each arm's
    difference from the first arm, seed by seed (the same seed draws the same subset
    and data order for every arm).

    ``arms`` maps a label to (registry name, keyword arguments), as
    ``record_runs`` takes them. Records of the current recipe only: the latest
    record of each (network, seed)."""
    latest: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for record in ledger:
        if record["kind"] == "train" and record["profile"] == profile:
            by_seed = latest[_key(record)]
            seed = record["seed"]
            if seed not in by_seed or record["created"] > by_seed[seed]["created"]:
                by_seed[seed] = record
    found = {}
    for label, (model, kwargs) in arms.items():
        wanted = network_kwargs(model, kwargs)
        matches = [
            v for k, v in latest.items() if k[0] == model and dict(k[1]) == wanted
        ]
        found[label] = matches[0] if matches else {}
    seeds = sorted(set().union(*(set(v) for v in found.values())))
    reference = next(iter(arms))
    headers = ["network", *[f"seed {s}" for s in seeds], "mean", "spread (sd)"]
    rows = []
    for label, runs in found.items():
        accs = [100 * runs[s]["test_acc"] if s in runs else None for s in seeds]
        rows.append(
            [label, *[f"{a:.1f}" if a is not None else "" for a in accs], *_stats(accs)]
        )
        if label != reference:
            base = [
                100 * found[reference][s]["test_acc"] if s in found[reference] else None
                for s in seeds
            ]
            diffs = [
                a - b if a is not None and b is not None else None
                for a, b in zip(accs, base)
            ]
            rows.append(
                [
                    f"{label} − {reference}",
                    *[f"{d:+.1f}" if d is not None else "" for d in diffs],
                    *_stats(diffs, sign=True),
                ]
            )
    some = next((r for runs in found.values() for r in runs.values()), None)
    caption = f"test accuracy (%) by seed: no runs of profile {profile!r} in the ledger"
    if some is not None:
        caption = "test accuracy (%) by seed"
        n = f"{some['test_images']:,}" if some["test_images"] else "?"
        caption += f": {some['dataset']}, {n} test images, profile {profile!r}, "
        caption += f"{some['epochs']} epochs"
    return Table(headers, rows, caption=caption)


def _stats(values: list[float | None], sign: bool = False) -> list[str]:
    present = [v for v in values if v is not None]
    if not present:
        return ["", ""]
    mean = sum(present) / len(present)
    sd = (
        math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1))
        if len(present) > 1
        else float("nan")
    )
    mean_text = f"{mean:+.1f}" if sign else f"{mean:.1f}"
    return [mean_text, f"{sd:.1f}" if sd == sd else ""]
