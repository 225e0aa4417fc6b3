"""Deflated Sharpe, PBO (CSCV) and validation splits against hand computations and brute force."""

import itertools
import math
import statistics
from statistics import NormalDist

import numpy as np
import pytest

from backtesting.validacion import (
    DAY_MS,
    Pbo,
    cpcv_paths,
    daily_returns,
    deflated_sharpe,
    deflated_sharpe_of,
    expected_max_sharpe,
    probabilistic_sharpe,
    probability_of_backtest_overfitting,
    purged_kfold_windows,
    walk_forward_windows,
)

PHI = NormalDist()
GAMMA = 0.5772156649015329  # Euler-Mascheroni


def _sr0(n_trials, variance):
    """E[max SR] written out: sqrt(V) * ((1-g) Z^-1(1 - 1/N) + g Z^-1(1 - 1/(N e)))."""
    first = PHI.inv_cdf(1 - 1 / n_trials)
    second = PHI.inv_cdf(1 - 1 / (n_trials * math.e))
    return math.sqrt(variance) * ((1 - GAMMA) * first + GAMMA * second)


def _psr(sr, benchmark, t, skew, kurt):
    z = (sr - benchmark) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# --- deflated Sharpe -------------------------------------------------------------------------


def test_expected_max_sharpe_by_hand():
    assert expected_max_sharpe(10, 0.04) == pytest.approx(_sr0(10, 0.04), rel=1e-12)
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0


def test_deflated_sharpe_by_hand():
    sr, n, v, t, skew, kurt = 0.1, 20, 0.001, 250, -0.5, 5.0
    # SR0 = sqrt(.001) * (0.4228 * Z^-1(0.95) + 0.5772 * Z^-1(1 - 1/(20e)))
    sr0 = _sr0(n, v)
    # z = (SR - SR0) * sqrt(249) / sqrt(1 + 0.5*0.1 + 4/4 * 0.01)
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 + 0.5 * 0.1 + (kurt - 1) / 4 * 0.01)
    expected = PHI.cdf(z)
    assert deflated_sharpe(sr, n, v, t, skew, kurt) == pytest.approx(expected, rel=1e-12)


def test_paper_numerical_example():
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", JPM 40(5), the numerical
    # example: annualised SR 2.5 over 5 years of daily returns (T = 1250, 250 days a year),
    # N = 100 trials with annualised V[SR] = 0.5, skew -3, kurtosis 10. The paper reports the
    # non-annualised E[max SR] = 0.1132 and DSR = 0.9004.
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(sr, 100, variance, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_one_trial_is_the_psr_against_zero():
    expected = _psr(0.08, 0.0, 500, 0.3, 4.0)
    assert deflated_sharpe(0.08, 1, 0.01, 500, 0.3, 4.0) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe(0.08, 0.0, 500, 0.3, 4.0) == pytest.approx(expected, rel=1e-12)
    # no dispersion across trials: no selection bias either
    assert deflated_sharpe(0.08, 40, 0.0, 500, 0.3, 4.0) == pytest.approx(expected, rel=1e-12)


def test_more_trials_or_more_dispersion_never_raise_the_dsr():
    by_trials = [deflated_sharpe(0.12, n, 0.002, 700, -1.0, 6.0) for n in range(1, 2001)]
    assert all(b <= a for a, b in itertools.pairwise(by_trials))
    assert by_trials[-1] < by_trials[0]
    by_variance = [deflated_sharpe(0.12, 50, v, 700, -1.0, 6.0) for v in np.linspace(0, 0.01, 50)]
    assert all(b < a for a, b in itertools.pairwise(by_variance))


def test_degenerate_spread_gives_its_limit_not_nan():
    # 1 - skew*SR + (kurt-1)/4 * SR^2 = 1 - 2 + 0 < 0: impossible moments, take the limit
    assert deflated_sharpe(1.0, 1, 0.0, 100, 2.0, 1.0) == 1.0
    assert deflated_sharpe(-1.0, 1, 0.0, 100, -2.0, 1.0) == 0.0
    assert probabilistic_sharpe(0.3, 0.3, 100, 0.0, 3.0) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"n_obs": 1}, "n_obs"),
        ({"n_trials": 0}, "n_trials"),
        ({"sharpe_variance": -1.0}, "sharpe_variance"),
        ({"sharpe": math.nan}, "sharpe"),
    ],
)
def test_deflated_sharpe_rejects_bad_input(kwargs, word):
    args = {"sharpe": 0.1, "n_trials": 5, "sharpe_variance": 0.01, "n_obs": 100, "skew": 0.0,
            "kurtosis": 3.0} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match=word):
        deflated_sharpe(**args)


def test_deflated_sharpe_of_computes_moments_like_the_paper():
    rng = np.random.default_rng(7)
    returns = rng.standard_t(5, 300) * 0.01 + 0.001
    trials = np.append(rng.normal(0.02, 0.03, 60), [np.nan, np.nan])
    r = [float(x) for x in returns]
    mean = statistics.fmean(r)
    m2 = sum((x - mean) ** 2 for x in r) / len(r)
    skew = sum((x - mean) ** 3 for x in r) / len(r) / m2**1.5
    kurt = sum((x - mean) ** 4 for x in r) / len(r) / m2**2
    sr = mean / statistics.stdev(r)
    finite = [float(x) for x in trials if not math.isnan(x)]
    sr0 = _sr0(len(finite), statistics.variance(finite))
    expected = _psr(sr, sr0, len(r), skew, kurt)
    assert deflated_sharpe_of(returns, trials) == pytest.approx(expected, rel=1e-9)


def test_deflated_sharpe_of_constant_returns():
    trials = np.array([0.1, 0.2, 0.3])
    assert deflated_sharpe_of(np.full(10, 0.001), trials) == 1.0
    assert deflated_sharpe_of(np.full(10, -0.001), trials) == 0.0
    with pytest.raises(ValueError, match="trial_sharpes"):
        deflated_sharpe_of(np.array([0.1, 0.2]), np.array([np.nan]))
    with pytest.raises(ValueError, match="returns"):
        deflated_sharpe_of(np.array([0.1, np.nan]), trials)


# --- daily returns ---------------------------------------------------------------------------


def test_daily_returns_by_hand():
    day0 = 19_000 * DAY_MS
    hour = 3_600_000
    times = np.array([day0, day0 + 12 * hour, day0 + DAY_MS, day0 + DAY_MS + 23 * hour,
                      day0 + 3 * DAY_MS + hour])  # fmt: skip
    equity = np.array([100.0, 110.0, 99.0, 121.0, 60.5])
    days, returns = daily_returns(times, equity)
    assert days.tolist() == [day0, day0 + DAY_MS, day0 + 3 * DAY_MS]  # day 2 has no bars
    # day 0: 110 vs the first bar's 100; day 1: 121 vs 110; day 3: 60.5 vs 121
    assert returns == pytest.approx([0.10, 0.10, -0.5])


def test_daily_returns_of_many_columns_match_each_column():
    rng = np.random.default_rng(3)
    times = 1_700_000_000_000 + np.arange(2_000, dtype=np.int64) * 15 * 60_000
    equity = 1000 * np.cumprod(1 + rng.normal(0, 1e-3, (2_000, 4)), axis=0)
    equity[1500:, 2] = 0.0  # blown account: -100 % once, then flat
    days, returns = daily_returns(times, equity)
    assert returns.shape == (len(days), 4)
    for j in range(4):
        one_days, one = daily_returns(times, equity[:, j])
        assert np.array_equal(one_days, days)
        assert np.allclose(one, returns[:, j])
    blown = returns[:, 2]
    assert np.count_nonzero(blown == -1.0) == 1 and np.all(blown[np.argmin(blown) + 1 :] == 0)


def test_daily_returns_rejects_unsorted_times():
    with pytest.raises(ValueError, match="increasing"):
        daily_returns(np.array([2, 1]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="as long as"):
        daily_returns(np.array([1, 2]), np.array([1.0]))


# --- probability of backtest overfitting -----------------------------------------------------


def _sharpe(values):
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values) or statistics.stdev(values) == 0:
        return -math.inf
    return statistics.fmean(values) / statistics.stdev(values)


def _brute_pbo(performance, blocks, metric=_sharpe):
    """CSCV written straight from the paper: a loop over splits, columns and rows."""
    rows = len(performance) // blocks * blocks
    data = performance[len(performance) - rows :]
    size = rows // blocks
    n = data.shape[1]
    bad = [not np.isfinite(data[:, j]).all() for j in range(n)]
    logits, is_best, oos_best = [], [], []
    for chosen_blocks in itertools.combinations(range(blocks), blocks // 2):
        is_rows = [i for b in chosen_blocks for i in range(b * size, (b + 1) * size)]
        oos_rows = [i for i in range(rows) if i // size not in chosen_blocks]
        is_m = [-math.inf if bad[j] else metric(data[is_rows, j]) for j in range(n)]
        oos_m = [-math.inf if bad[j] else metric(data[oos_rows, j]) for j in range(n)]
        best = max(range(n), key=lambda j: (is_m[j], -j))  # first of equal bests
        below = sum(m < oos_m[best] for m in oos_m)
        tied = sum(m == oos_m[best] for m in oos_m)
        omega = (below + (tied + 1) / 2) / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
        is_best.append(is_m[best])
        oos_best.append(oos_m[best])
    return np.array(logits), np.array(is_best), np.array(oos_best)


def test_pbo_tiny_case_by_hand():
    # Blocks of 2 rows. Sharpe of two points [x, y] is mean / (|x - y| / sqrt 2).
    a = [1.0, 3.0, 2.0, 0.0]  # block 0: 2/sqrt2 = 1.414; block 1: 1/sqrt2 = 0.707
    b = [2.0, 3.0, 1.0, 4.0]  # block 0: 2.5/(1/sqrt2) = 3.536; block 1: 2.5/(3/sqrt2) = 1.179
    c = [-2.0, 1.0, 3.0, 4.0]  # block 0: -0.5/(3/sqrt2) = -0.236; block 1: 3.5/(1/sqrt2) = 4.950
    result = probability_of_backtest_overfitting(np.array([a, b, c]).T, blocks=2)
    # split IS = block 0: b is chosen, OOS ranks a .707 < b 1.179 < c 4.95 -> 2 of 3: omega 2/4
    # split IS = block 1: c is chosen, OOS c -0.236 is the worst -> omega 1/4
    assert isinstance(result, Pbo)
    assert result.n_splits == 2
    assert result.logits == pytest.approx([0.0, math.log(1 / 3)])
    assert result.pbo == 1.0  # logit 0 counts as overfit
    s2 = math.sqrt(2)
    assert result.is_best == pytest.approx([2.5 * s2, 3.5 * s2])
    assert result.oos_of_best == pytest.approx([2.5 * s2 / 3, -0.5 * s2 / 3])
    assert result.probability_of_loss == 0.5
    slope = (-0.5 * s2 / 3 - 2.5 * s2 / 3) / (3.5 * s2 - 2.5 * s2)
    assert result.degradation_slope == pytest.approx(slope)


def test_pbo_matches_brute_force_on_random_data():
    rng = np.random.default_rng(11)
    performance = rng.normal(0.0005, 0.01, (64, 7)) + rng.normal(0, 0.002, (64, 1))
    result = probability_of_backtest_overfitting(performance, blocks=8)
    logits, is_best, oos_best = _brute_pbo(performance, 8)
    assert result.n_splits == math.comb(8, 4)
    assert np.allclose(result.logits, logits, rtol=0, atol=1e-12)
    assert np.allclose(result.is_best, is_best) and np.allclose(result.oos_of_best, oos_best)
    assert result.pbo == pytest.approx(np.mean(logits <= 0))
    assert result.probability_of_loss == pytest.approx(np.mean(oos_best < 0))
    assert result.degradation_slope == pytest.approx(np.polyfit(is_best, oos_best, 1)[0])


def test_pbo_trims_leading_rows_and_handles_ties_and_degenerate_columns():
    rng = np.random.default_rng(5)
    performance = rng.normal(0.001, 0.01, (67, 6))
    performance[:, 1] = performance[:, 0]  # identical columns: tied OOS ranks
    performance[:, 2] = 0.002  # constant: Sharpe -inf everywhere
    performance[10, 3] = np.nan  # a NaN anywhere: -inf everywhere
    performance[:35, 4] = 0.0  # flat in some halves only
    result = probability_of_backtest_overfitting(performance, blocks=8)
    logits, is_best, oos_best = _brute_pbo(performance, 8)  # 67 rows: first 3 dropped
    assert np.allclose(result.logits, logits, rtol=0, atol=1e-12)
    assert np.array_equal(np.isinf(result.oos_of_best), np.isinf(oos_best))
    trimmed = probability_of_backtest_overfitting(performance[3:], blocks=8)
    assert np.array_equal(trimmed.logits, result.logits)


def test_pbo_custom_metric_takes_the_slow_path():
    rng = np.random.default_rng(2)
    performance = rng.normal(0.0, 0.01, (48, 5))
    result = probability_of_backtest_overfitting(
        performance, blocks=6, metric=lambda rows: rows.mean(axis=0)
    )
    logits, is_best, oos_best = _brute_pbo(performance, 6, metric=lambda v: float(np.mean(v)))
    assert np.allclose(result.logits, logits) and np.allclose(result.oos_of_best, oos_best)
    sharpe = probability_of_backtest_overfitting(
        performance, blocks=6, metric=lambda rows: rows.mean(axis=0) / rows.std(axis=0, ddof=1)
    )
    fast = probability_of_backtest_overfitting(performance, blocks=6)
    assert np.allclose(sharpe.logits, fast.logits) and np.allclose(sharpe.is_best, fast.is_best)


def test_pbo_of_noise_is_near_one_half():
    performance = np.random.default_rng(42).normal(0, 0.01, (365, 200))
    result = probability_of_backtest_overfitting(performance, blocks=16)
    assert result.n_splits == 12_870
    assert 0.3 < result.pbo < 0.7


def test_pbo_of_a_true_edge_is_near_zero():
    rng = np.random.default_rng(8)
    performance = rng.normal(0, 0.01, (365, 100))
    performance[:, 37] += 0.004  # a per-day Sharpe of ~0.4 among skill-less columns
    result = probability_of_backtest_overfitting(performance, blocks=16)
    assert result.pbo < 0.05
    assert result.probability_of_loss < 0.05


@pytest.mark.parametrize(
    ("shape", "blocks", "word"),
    [
        ((64, 3), 7, "even"),
        ((64, 3), 0, "even"),
        ((15, 3), 16, "rows"),
        ((3, 3), 2, "rows"),
        ((64, 1), 8, "N >= 2"),
    ],  # fmt: skip
)
def test_pbo_rejects_bad_shapes(shape, blocks, word):
    with pytest.raises(ValueError, match=word):
        probability_of_backtest_overfitting(np.ones(shape), blocks=blocks)


# --- splits ----------------------------------------------------------------------------------


def test_walk_forward_by_hand():
    # in_sample 0.75: L_is = 3 L_oos; 100 = 3 L + 4 L + 2 -> L_oos = 14, L_is = 42
    rolling = walk_forward_windows(100, windows=4, in_sample=0.75)
    assert [w.test for w in rolling] == [(range(42, 56),), (range(56, 70),), (range(70, 84),),
                                         (range(84, 100),)]  # fmt: skip
    assert [w.train for w in rolling] == [(range(0, 42),), (range(14, 56),), (range(28, 70),),
                                          (range(42, 84),)]  # fmt: skip
    anchored = walk_forward_windows(100, windows=4, in_sample=0.75, anchored=True)
    assert [w.train for w in anchored] == [(range(0, s),) for s in (42, 56, 70, 84)]
    assert [w.test for w in anchored] == [w.test for w in rolling]


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_properties(anchored):
    checked = 0
    for n, windows, in_sample in itertools.product(
        (30, 97, 365, 1000), (1, 2, 3, 5, 8), (0.5, 0.6, 0.75, 0.9)
    ):
        try:
            result = walk_forward_windows(n, windows, in_sample, anchored)
        except ValueError:
            assert n // (windows + in_sample / (1 - in_sample)) < 2
            continue
        checked += 1
        assert len(result) == windows
        tests = [w.test[0] for w in result]
        first = tests[0].start
        assert [t.start for t in tests[1:]] == [t.stop for t in tests[:-1]]  # in order, tiled
        assert tests[-1].stop == n and all(len(w.test) == 1 for w in result)
        lengths = {len(t) for t in tests[:-1]}
        assert len(lengths) <= 1 and len(tests[-1]) >= len(tests[0]) >= 2
        ratio = in_sample / (1 - in_sample)
        if windows > 1:  # the last test holds the rounding remainder, the others are nominal
            assert abs(first - ratio * len(tests[0])) <= 0.5
            assert len(tests[-1]) - len(tests[0]) < windows + ratio
        else:
            assert abs(first - in_sample * n) <= ratio + 0.5
        for w in result:
            (train,) = w.train
            assert train.step == 1 and train.stop == w.test[0].start
            assert max(train) < min(w.test[0])
            assert train.start == 0 if anchored else len(train) == first
    assert checked > 50


def test_walk_forward_rejects_bad_arguments():
    for kwargs, word in (({"windows": 0}, "windows"), ({"in_sample": 1.0}, "in_sample"),
                         ({"in_sample": 0.0}, "in_sample"), ({"n": 8}, "n=8")):  # fmt: skip
        with pytest.raises(ValueError, match=word):
            walk_forward_windows(**({"n": 100} | kwargs))


def test_purged_kfold_properties():
    checked = 0
    for n, folds, embargo in itertools.product((10, 37, 100), (2, 3, 4, 5, 6), (0, 1, 3)):
        for test_folds in range(1, folds):
            try:
                result = purged_kfold_windows(n, folds, embargo, test_folds)
            except ValueError:
                assert n // folds <= embargo
                continue
            checked += 1
            assert len(result) == math.comb(folds, test_folds)
            tested = np.zeros(n, dtype=int)
            for w in result:
                test_bars = {i for r in w.test for i in r}
                train_bars = {i for r in w.train for i in r}
                embargoed = {i for r in w.test for i in range(r.stop, r.stop + embargo)}
                assert not train_bars & test_bars and not train_bars & embargoed
                assert train_bars == set(range(n)) - test_bars - embargoed
                for ranges in (w.train, w.test):
                    assert all(len(r) > 0 and r.step == 1 for r in ranges)
                    assert all(a.stop < b.start for a, b in itertools.pairwise(ranges))
                for r in w.test:
                    tested[r.start : r.stop] += 1
            assert np.all(tested == math.comb(folds - 1, test_folds - 1))
    assert checked > 100


def test_purged_kfold_groups_are_near_equal():
    result = purged_kfold_windows(103, folds=5, embargo=2)
    sizes = [len(w.test[0]) for w in result]
    assert sum(sizes) == 103 and max(sizes) - min(sizes) <= 1
    # edges 0, 20, 41, 61, 82, 103; the 2 bars after the test group are embargoed
    assert result[1].test == (range(20, 41),)
    assert result[1].train == (range(0, 20), range(43, 103))
    pair = purged_kfold_windows(103, folds=5, embargo=2, test_folds=2)
    assert pair[0].test == (range(0, 41),)  # groups 0 and 1 merged
    assert pair[1].test == (range(0, 20), range(41, 61))
    assert pair[1].train == (range(22, 41), range(63, 103))


def test_cpcv_paths_and_bad_arguments():
    for folds, test_folds in ((6, 2), (10, 2), (8, 3), (5, 1)):
        expected = test_folds / folds * math.comb(folds, test_folds)
        assert cpcv_paths(folds, test_folds) == expected
    for kwargs, word in (({"folds": 1}, "folds"), ({"test_folds": 5}, "test_folds"),
                         ({"embargo": -1}, "embargo"), ({"n": 3}, "n=3")):  # fmt: skip
        with pytest.raises(ValueError, match=word):
            purged_kfold_windows(**({"n": 50, "folds": 5} | kwargs))
    with pytest.raises(ValueError, match="embargo=10"):
        purged_kfold_windows(4, folds=2, embargo=10)
