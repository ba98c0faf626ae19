"""What the runs allow us to say: whether two networks differ on the test images
they were both scored on, whether that holds from seed to seed, and the ledger
as a table of networks a reader can compare.

Two runs scored on the same test images are *paired*: what matters is the
images on which they disagree. ``mcnemar`` tests that (McNemar's exact test, the
binomial test on the discordant images, which Dietterich (1998) recommends for
comparing two classifiers on one test set) and gives an interval for the paired
difference of accuracy. It needs each run's per-image correctness, which
``fit`` keeps (``History.test_correct``) and a ledger record carries
(``test_correct``, with a fingerprint of the test set, ``test_set``).

One pair of runs answers one question only: would these two trained networks
rank the same way on other test images? Whether another seed (other initial
weights, another data order, another subset) would, ``over_seeds`` answers from
the paired differences of several seeds: their mean with a t interval, and how
many seeds favour each network.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .report import Table, wrap

CONFIDENCE = 0.95


# ------------------------------------------------ per-image correctness as bits


def pack_correct(correct) -> str:
    """Per-image correctness (booleans in test-set order) as a hex string: the bits
    packed by ``numpy.packbits`` in big-endian bit order, the last byte padded with
    zeros (2,500 characters for 10,000 images)."""
    bits = np.asarray(correct, dtype=bool).reshape(-1)
    return np.packbits(bits, bitorder="big").tobytes().hex()


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The ``n`` booleans ``pack_correct`` packed into ``text``; ``ValueError`` when
    the text is not hex of exactly the right length with zero padding."""
    if not isinstance(text, str) or len(text) != 2 * math.ceil(n / 8):
        raise ValueError(
            f"per-image correctness of {n:,} images must be "
            f"{2 * math.ceil(n / 8):,} hex characters"
        )
    try:
        raw = np.frombuffer(bytes.fromhex(text), dtype=np.uint8)
    except ValueError:
        raise ValueError("per-image correctness must be hex digits") from None
    bits = np.unpackbits(raw, bitorder="big").astype(bool)
    if bits[n:].any():
        raise ValueError("per-image correctness has set bits past its last image")
    return bits[:n]


def correctness(run) -> np.ndarray:
    """A run's per-image test correctness as booleans: from an array or list, from a
    ledger record (``test_correct``, ``test_images``) or from a ``History``."""
    if isinstance(run, dict):
        if run.get("test_correct") is None:
            raise ValueError(
                f"the record of {run.get('model', 'a run')} (seed {run.get('seed')}) "
                "keeps no per-image correctness: it cannot be paired"
            )
        return unpack_correct(run["test_correct"], run["test_images"])
    if hasattr(run, "meta") and hasattr(run, "test_correct"):
        if run.test_correct is None:
            raise ValueError(
                f"the run of {run.meta.get('model', 'a model')} keeps no per-image "
                "correctness: it cannot be paired"
            )
        return unpack_correct(run.test_correct, run.meta["test_images"])
    return np.asarray(run, dtype=bool).reshape(-1)


def _test_set(run) -> str | None:
    if isinstance(run, dict):
        return run.get("test_set")
    if hasattr(run, "meta"):
        return run.meta.get("test_set")
    return None


# ------------------------------------------------------------ the paired tests


def _binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` trials at probability 1/2
    (``scipy.stats.binomtest``)."""
    from scipy.stats import binomtest

    return 1.0 if n == 0 else float(binomtest(k, n, 0.5).pvalue)


@dataclass(frozen=True)
class Paired:
    """Two runs on the same ``n`` test images: ``a_only`` images only the first got
    right, ``b_only`` only the second; the accuracy difference (first minus
    second, a fraction), its interval, and McNemar's exact two-sided p-value."""

    n: int
    a_only: int
    b_only: int
    difference: float
    low: float
    high: float
    p: float
    confidence: float = CONFIDENCE

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only

    def p_text(self) -> str:
        return f"p = {self.p:.2g}" if self.p >= 0.001 else "p < 0.001"

    def __str__(self) -> str:
        return (
            f"{100 * self.difference:+.2f} points on {self.n:,} images "
            f"({100 * self.confidence:.0f}% interval {100 * self.low:+.2f} to "
            f"{100 * self.high:+.2f}); {self.a_only} images right only in the "
            f"first, {self.b_only} only in the second: McNemar's exact test "
            f"{self.p_text()}"
        )


def mcnemar(a, b, confidence: float = CONFIDENCE) -> Paired:
    """McNemar's exact test of two runs scored on the same test images.

    ``a`` and ``b`` are per-image correctness (boolean arrays in test-set order),
    ledger records or ``History`` objects that keep it; records or histories
    scored on different test sets (their ``test_set`` fingerprints differ) are
    refused. The p-value is the exact two-sided binomial test of the discordant
    images at 1/2 (``scipy.stats.binomtest``). The interval for the paired
    difference of accuracy is Agresti and Min's (2005): the Wald interval after
    adding half an image to each cell of the 2x2 table, which stays honest when
    few images are discordant."""
    from scipy.stats import norm

    sets = {_test_set(a), _test_set(b)} - {None}
    if len(sets) > 1:
        raise ValueError(
            "the two runs were scored on different test sets (their test_set "
            "fingerprints differ): they cannot be paired"
        )
    x, y = correctness(a), correctness(b)
    if x.shape != y.shape:
        raise ValueError(
            f"the two runs were scored on {len(x):,} and {len(y):,} test images: "
            "a paired test needs the same images"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = len(x)
    a_only, b_only = int((x & ~y).sum()), int((~x & y).sum())
    k = min(a_only, b_only)
    p = _binomial_two_sided(k, a_only + b_only)
    m, u, v = n + 2, a_only + 0.5, b_only + 0.5
    centre = (u - v) / m
    spread = math.sqrt(max(0.0, (u + v) - (u - v) ** 2 / m)) / m
    z = float(norm.ppf(0.5 + confidence / 2))
    return Paired(
        n=n,
        a_only=a_only,
        b_only=b_only,
        difference=(a_only - b_only) / n if n else 0.0,
        low=max(-1.0, centre - z * spread),
        high=min(1.0, centre + z * spread),
        p=p,
        confidence=confidence,
    )


@dataclass(frozen=True)
class OverSeeds:
    """The paired accuracy differences (first network minus second, fractions) of
    the same seeds: their mean, a t interval and the two-sided one-sample t-test's
    p-value (both NaN with fewer than 2 seeds), how many seeds favour each, and each
    seed's McNemar test."""

    seeds: tuple[int, ...]
    per_seed: tuple[Paired, ...]
    mean: float
    low: float
    high: float
    p: float
    favour_a: int
    favour_b: int
    confidence: float = CONFIDENCE

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(r.difference for r in self.per_seed)

    def __str__(self) -> str:
        k = len(self.seeds)
        if k < 2:
            interval = "no interval from one seed"
        else:
            p = f"p = {self.p:.2g}" if self.p >= 0.001 else "p < 0.001"
            interval = (
                f"{100 * self.confidence:.0f}% t interval {100 * self.low:+.2f} to "
                f"{100 * self.high:+.2f}, paired t-test {p}"
            )
        ties = k - self.favour_a - self.favour_b
        tie_text = f", {ties} tied" if ties else ""
        return (
            f"mean paired difference {100 * self.mean:+.2f} points over {k} seeds "
            f"({interval}); {self.favour_a} of {k} seeds favour the first, "
            f"{self.favour_b} the second{tie_text}"
        )


def verdict(result: OverSeeds, first: str, second: str) -> str:
    """One sentence of verdict on ``first`` against ``second``, from the test that
    decides it: the paired t-test over seeds when there are two or more, else
    McNemar's test of the one seed. "Ahead" or "behind" only when that test's
    interval excludes zero; otherwise "no difference at this scale", with the
    size of difference the runs could have told apart (the interval's
    half-width)."""
    k = len(result.seeds)
    if k >= 2:
        low, high, test = result.low, result.high, "the paired t-test over seeds"
        p = result.p
        basis = f"{k} seeds"
    else:
        one = result.per_seed[0]
        low, high, test, p = one.low, one.high, "McNemar's exact test", one.p
        basis = f"one seed, {one.n:,} test images"
    p_text = f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
    interval = (
        f"{100 * result.confidence:.0f}% interval {100 * low:+.2f} to "
        f"{100 * high:+.2f} points"
    )
    mean = 100 * result.mean
    if k >= 2:
        decided = [r for r in result.per_seed if r.p < 0.05]
        same_way = (
            decided
            and len(decided) == k
            and len({r.difference > 0 for r in decided}) == 1
        )
        favour = first if result.favour_a >= result.favour_b else second
        count = max(result.favour_a, result.favour_b)
        basis = f"{k} seeds, {count} of them favouring {favour}"
        if same_way:
            basis += (
                "; each seed's McNemar test, p < 0.05, ranks these trained networks "
                "the same way"
            )
    if low > 0 or high < 0:
        side = "ahead of" if low > 0 else "behind"
        return (
            f"{first} is {side} {second} by {abs(mean):.2f} points on average "
            f"({basis}; {test}, {p_text}; {interval})."
        )
    half = 100 * (high - low) / 2
    return (
        f"No difference between {first} and {second} at this scale: "
        f"{mean:+.2f} points ({basis}; {test}, {p_text}; {interval}); a "
        f"difference under about {half:.1f} points cannot be told from none here."
    )


def over_seeds(pairs, confidence: float = CONFIDENCE) -> OverSeeds:
    """The comparison of two networks over seeds, seed by seed.

    ``pairs`` maps a seed to the two runs of that seed (first network, second
    network), as ``mcnemar`` takes them. Each seed's runs are paired on their test
    images; the mean of the per-seed differences gets a t interval with k - 1
    degrees of freedom (``scipy.stats.t``)."""
    from scipy import stats

    if not pairs:
        raise ValueError("over_seeds needs the runs of at least one seed")
    seeds = tuple(sorted(pairs))
    per_seed = tuple(mcnemar(*pairs[s], confidence=confidence) for s in seeds)
    d = np.array([r.difference for r in per_seed])
    mean, k = float(d.mean()), len(d)
    low = high = p = float("nan")
    if k >= 2:
        sd = float(d.std(ddof=1))
        if sd == 0:
            low = high = mean
            p = 1.0 if mean == 0 else 0.0
        else:
            half = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) * sd / math.sqrt(k)
            low, high = mean - half, mean + half
            p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return OverSeeds(
        seeds=seeds,
        per_seed=per_seed,
        mean=mean,
        low=low,
        high=high,
        p=p,
        favour_a=int((d > 0).sum()),
        favour_b=int((d < 0).sum()),
        confidence=confidence,
    )


def detectable_difference(n: int, accuracy: float, seeds: int = 1) -> float:
    """Roughly the smallest accuracy difference (a fraction) that ``seeds`` paired
    comparisons on ``n`` test images would detect at the 5% level with 80% power,
    if about a fraction ``accuracy`` of the images were right for each network
    and their errors independent: (1.96 + 0.84) standard errors of the paired
    difference. Correlated errors (the usual case) make it smaller."""
    se = math.sqrt(2 * accuracy * (1 - accuracy) / n) / math.sqrt(max(1, seeds))
    return (1.959964 + 0.841621) * se


def compare(runs, a: str, b: str) -> str:
    """Two runs of one seed scored on the same test images, as one paragraph: the
    paired difference and McNemar's exact test. One seed cannot say whether
    another seed would rank the networks the same way."""
    result = mcnemar(runs[a], runs[b])
    first = f"{a} against {b}:"
    verdict = (
        "a difference McNemar's test detects at the 5% level"
        if result.p < 0.05
        else "no difference McNemar's test detects at the 5% level"
    )
    seeds = "one seed each: whether another seed ranks them alike, this cannot say"
    return wrap(f"{first}\n    {result};\n    {verdict};\n    {seeds}")


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
    record of each (network, seed), among those that keep per-image correctness
    (schema 4, scored on the whole test set) whenever the ledger has any."""
    latest: dict[tuple, dict[int, dict]] = defaultdict(dict)
    paired = [r for r in ledger if r.get("test_correct")]
    for record in paired or ledger:  # the records that can be paired, where any are
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
