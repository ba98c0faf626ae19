"""The paired tests of resnotes.evidence, against scipy and statsmodels and on hand
cases: McNemar's exact test, the paired interval, the comparison over seeds and
the per-image bits that records carry."""

import math

import numpy as np
import pytest
from scipy import stats

from resnotes.evidence import detectable_difference, mcnemar, over_seeds, pack_correct, unpack_correct

statsmodels_tables = pytest.importorskip("statsmodels.stats.contingency_tables")
statsmodels_weightstats = pytest.importorskip("statsmodels.stats.weightstats")


def pair(rng, n, pa, pb, agreement):
    """Two correlated correctness vectors: b copies a on a fraction ``agreement``."""
    a = rng.random(n) < pa
    b = np.where(rng.random(n) < agreement, a, rng.random(n) < pb)
    return a, b


@pytest.mark.parametrize("seed", range(8))
def test_mcnemar_equals_scipy_and_statsmodels_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 20_000))
    a, b = pair(rng, n, rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9), rng.uniform(0, 0.95))
    result = mcnemar(a, b)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    assert (result.a_only, result.b_only, result.n) == (a_only, b_only, n)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.p == pytest.approx(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue, rel=1e-12)
    table = [[int((a & b).sum()), a_only], [b_only, int((~a & ~b).sum())]]
    assert result.p == pytest.approx(statsmodels_tables.mcnemar(table, exact=True).pvalue, rel=1e-9)
    assert result.low < result.difference < result.high


def test_hand_cases_no_discordant_images_and_all_one_way():
    same = np.array([True, False] * 500)
    result = mcnemar(same, same)
    assert (result.a_only, result.b_only, result.difference, result.p) == (0, 0, 0.0, 1.0)
    assert result.low < 0 < result.high  # Agresti-Min: an interval even with no discordant image
    a = np.ones(100, bool)
    b = a.copy()
    b[:10] = False  # 10 discordant, all for a: p = 2 / 2**10
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only) == (10, 0)
    assert result.p == pytest.approx(2 / 2**10)
    assert result.difference == pytest.approx(0.10) and result.low > 0
    swapped = mcnemar(b, a)
    assert swapped.p == result.p and swapped.difference == -result.difference
    assert swapped.low == pytest.approx(-result.high) and swapped.high == pytest.approx(-result.low)


def test_the_paired_interval_is_agresti_min_and_covers_at_its_level():
    # By hand: n = 1,000, 30 against 10 discordant images.
    a = np.zeros(1000, bool)
    b = np.zeros(1000, bool)
    a[:30] = True
    b[30:40] = True
    result = mcnemar(a, b)
    u, v, m = 30.5, 10.5, 1002
    half = 1.959964 * math.sqrt((u + v) - (u - v) ** 2 / m) / m
    assert result.low == pytest.approx((u - v) / m - half, rel=1e-5)
    assert result.high == pytest.approx((u - v) / m + half, rel=1e-5)
    # Coverage: two networks with the same accuracy, 2,000 simulated test sets.
    rng = np.random.default_rng(1)
    covered = sum(mcnemar(*pair(rng, 2000, 0.6, 0.6, 0.7)).low <= 0 for _ in range(2000))
    assert 0.93 <= covered / 2000 <= 0.975


def test_type_one_error_of_mcnemar_is_at_most_its_level():
    rng = np.random.default_rng(2)
    rejections = sum(mcnemar(*pair(rng, 1000, 0.55, 0.55, 0.6)).p < 0.05 for _ in range(1000))
    assert rejections / 1000 <= 0.06


def test_over_seeds_equals_scipys_t_interval_and_statsmodels():
    rng = np.random.default_rng(3)
    pairs = {seed: pair(rng, 10_000, 0.6 + 0.01 * seed, 0.58, 0.8) for seed in range(5)}
    result = over_seeds(pairs)
    d = np.array([a.mean() - b.mean() for a, b in pairs.values()])
    assert result.differences == pytest.approx(tuple(d))
    assert result.mean == pytest.approx(d.mean())
    low, high = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((low, high))
    assert (result.low, result.high) == pytest.approx(statsmodels_weightstats.DescrStatsW(d).tconfint_mean(0.05))
    assert result.p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert result.favour_a + result.favour_b == 5 and result.favour_a == int((d > 0).sum())
    assert [r.p for r in result.per_seed] == [mcnemar(*pairs[s]).p for s in sorted(pairs)]


def test_over_seeds_with_one_seed_has_no_interval_and_says_so():
    a = np.array([True, True, False, False])
    result = over_seeds({7: (a, ~a)})
    assert result.seeds == (7,) and math.isnan(result.low) and math.isnan(result.p)
    assert "no interval from one seed" in str(result)
    with pytest.raises(ValueError):
        over_seeds({})


def test_the_bits_round_trip_big_endian_and_refuse_what_does_not_fit():
    rng = np.random.default_rng(4)
    correct = rng.random(10_000) < 0.6
    text = pack_correct(correct)
    assert len(text) == 2_500
    assert np.array_equal(unpack_correct(text, 10_000), correct)
    assert pack_correct([True, False, False, False, False, False, False, False, True]) == "8080"
    for bad in ("8081", "80", "zz80", "808000"):  # padding set, too short, not hex, too long
        with pytest.raises(ValueError):
            unpack_correct(bad, 9)


def test_runs_on_different_test_sets_or_sizes_are_not_paired():
    a = {"model": "m", "seed": 0, "test_images": 8, "test_correct": "ff", "test_set": "a" * 32}
    b = {**a, "test_set": "b" * 32}
    with pytest.raises(ValueError, match="different test sets"):
        mcnemar(a, b)
    with pytest.raises(ValueError, match="same images"):
        mcnemar(np.ones(8, bool), np.ones(9, bool))
    with pytest.raises(ValueError, match="no per-image correctness"):
        mcnemar({**a, "test_correct": None}, a)
    assert mcnemar(a, {**a, "test_correct": "0f"}).a_only == 4


def test_the_detectable_difference_shrinks_with_images_and_seeds():
    one = detectable_difference(10_000, 0.6)
    assert one == pytest.approx(2.8016 * math.sqrt(2 * 0.24 / 10_000), rel=1e-4)
    assert detectable_difference(1_000, 0.6) > one > detectable_difference(10_000, 0.6, seeds=4)


def test_the_verdict_names_its_test_and_says_ahead_only_when_the_interval_excludes_zero():
    from resnotes.evidence import verdict

    rng = np.random.default_rng(5)
    ahead = {s: pair(rng, 10_000, 0.62, 0.58, 0.8) for s in range(3)}
    said = verdict(over_seeds(ahead), "A", "B")
    assert said.startswith("A is ahead of B by") and "the paired t-test over seeds" in said
    same = {s: pair(rng, 10_000, 0.6, 0.6, 0.8) for s in range(3)}
    result = over_seeds(same)
    said = verdict(result, "A", "B")
    if result.low < 0 < result.high:
        assert said.startswith("No difference between A and B at this scale") and "cannot be told" in said
    one = verdict(over_seeds({0: ahead[0]}), "A", "B")
    assert "McNemar's exact test" in one and "one seed, 10,000 test images" in one
    behind = verdict(over_seeds({s: (b, a) for s, (a, b) in ahead.items()}), "A", "B")
    assert behind.startswith("A is behind B by")
