"""Overfitting measures for the optimiser: deflated Sharpe, PBO (CSCV) and validation splits.

Implemented from the papers, not from existing code:
- D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
  Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5).
- D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4) (combinatorially symmetric CV, CSCV).
- M. López de Prado (2018), "Advances in Financial Machine Learning", ch. 7 and 12 (purged k-fold,
  embargo, combinatorial purged cross-validation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from core.intervals import interval_ms

EULER_GAMMA = 0.5772156649015329
DAY_MS = interval_ms("1d")
# A subset whose variance is below this share of the column's mean square is constant: the
# sums-of-squares path cannot tell an exact zero from rounding noise.
_FLAT = 1e-12
_CHUNK_CELLS = 32_768  # splits x columns per chunk: 256 kB float buffers that stay in cache


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-period Sharpe of `n_trials` skill-less trials (DSR paper, eq. for SR0).

    It is the benchmark a selected strategy must beat: 0 for one trial or no dispersion.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if not sharpe_variance >= 0:
        raise ValueError(f"sharpe_variance must be >= 0, got {sharpe_variance}")
    if n_trials == 1 or sharpe_variance == 0:
        return 0.0
    z = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return float(math.sqrt(sharpe_variance) * z)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > benchmark) given a per-period Sharpe from `n_obs` returns (PSR).

    `kurtosis` is non-excess (normal = 3). The variance term 1 - skew*SR + (kurt-1)/4*SR^2 is
    never negative for real moments (kurt >= 1 + skew^2); at or below zero the estimate has no
    spread, so the result is its limit: 1.0 above the benchmark, 0.0 below, 0.5 on it.
    Raises ValueError if `n_obs` < 2 or an input is not finite.
    """
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    for name, value in (("sharpe", sharpe), ("benchmark", benchmark), ("skew", skew),
                        ("kurtosis", kurtosis)):  # fmt: skip
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    gap = sharpe - benchmark
    if gap == 0:
        return 0.5
    if spread <= 0:
        return 1.0 if gap > 0 else 0.0
    return float(norm.cdf(gap * math.sqrt(n_obs - 1) / math.sqrt(spread)))


def deflated_sharpe(
    sharpe: float, n_trials: int, sharpe_variance: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Deflated Sharpe ratio: the PSR of `sharpe` against the best of `n_trials` lucky trials.

    All Sharpe figures are per period, `kurtosis` is non-excess. With one trial it is the PSR
    against 0. Raises ValueError for `n_obs` < 2, `n_trials` < 1 or a negative variance.
    """
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe(sharpe, benchmark, n_obs, skew, kurtosis)


def deflated_sharpe_of(returns: np.ndarray, trial_sharpes: np.ndarray) -> float:
    """DSR of the chosen strategy from its per-period `returns` and every trial's Sharpe.

    Sharpe is mean/std(ddof=1); skew and kurtosis are population moments (as in the paper);
    V is the sample variance (ddof=1) of the finite trial Sharpes, whose count is N (trials
    whose Sharpe is NaN or infinite, e.g. ones that never traded, do not count). Constant
    returns have no spread: 1.0 if they gain, 0.0 if they lose. Raises ValueError on non-finite
    or too few returns, or no finite trial Sharpe.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or len(r) < 2 or not np.isfinite(r).all():
        raise ValueError("returns must be a 1-D array of at least 2 finite values")
    trials = np.asarray(trial_sharpes, dtype=float).ravel()
    trials = trials[np.isfinite(trials)]
    if len(trials) == 0:
        raise ValueError("trial_sharpes has no finite value")
    variance = float(trials.var(ddof=1)) if len(trials) > 1 else 0.0
    deviation = r - r.mean()
    m2 = float(np.mean(deviation**2))
    if m2 <= _FLAT * float(np.mean(r**2)):
        mean = float(r.mean())
        if mean != 0:
            return 1.0 if mean > 0 else 0.0
        return deflated_sharpe(0.0, len(trials), variance, len(r), 0.0, 3.0)  # never traded
    skew = float(np.mean(deviation**3)) / m2**1.5
    kurtosis = float(np.mean(deviation**4)) / m2**2
    sharpe = float(r.mean() / r.std(ddof=1))
    return deflated_sharpe(sharpe, len(trials), variance, len(r), skew, kurtosis)


def daily_returns(open_time_ms: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar equity (bars, or bars x N combinations) -> (UTC day starts ms, daily returns).

    A day's return is its last bar's equity over the previous day's last bar; the first day is
    measured from the first bar's equity (what came before is unknown), so it misses that bar's
    own move. Days without bars are absent, not zero-filled. After equity reaches 0 the returns
    are 0. Raises ValueError if the times are not strictly increasing or lengths differ.
    """
    times = np.asarray(open_time_ms, dtype=np.int64)
    values = np.asarray(equity, dtype=float)
    if times.ndim != 1 or len(times) == 0 or values.shape[:1] != times.shape:
        raise ValueError("open_time_ms must be 1-D, non-empty and as long as equity")
    if np.any(np.diff(times) <= 0):
        raise ValueError("open_time_ms must be strictly increasing")
    day = times // DAY_MS
    last = np.flatnonzero(np.diff(day, append=day[-1] + 1))
    close = values[last]
    previous = np.concatenate([values[:1], close[:-1]])
    out = np.zeros_like(close)
    np.divide(close - previous, previous, out=out, where=previous != 0)
    return day[last] * DAY_MS, out


@dataclass(frozen=True, slots=True)
class Pbo:
    """CSCV result: PBO, the logit per split and the chosen column's IS/OOS metric per split."""

    pbo: float
    logits: np.ndarray
    n_splits: int
    is_best: np.ndarray
    oos_of_best: np.ndarray
    degradation_slope: float
    probability_of_loss: float


def _block_selection(blocks: int) -> np.ndarray:
    """(C(S, S/2) x S) 0/1 matrix: row j marks the in-sample blocks of split j."""
    picks = np.array(list(itertools.combinations(range(blocks), blocks // 2)), dtype=np.intp)
    selection = np.zeros((len(picks), blocks))
    np.put_along_axis(selection, picks, 1.0, axis=1)
    return selection


def _rank_chosen(is_metric: np.ndarray, oos_metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per split: the IS-best column and its OOS rank (1 = worst, ties averaged)."""
    best = np.argmax(is_metric, axis=1)
    chosen = oos_metric[np.arange(len(best)), best][:, None]
    below = np.count_nonzero(oos_metric < chosen, axis=1)
    tied = np.count_nonzero(oos_metric == chosen, axis=1)  # includes the chosen column
    return best, below + (tied + 1) / 2


def _sharpe_cscv(
    data: np.ndarray, bad: np.ndarray, blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast CSCV on per-period Sharpe: block sums, one selection matmul per chunk of splits.

    Returns (rank, IS Sharpe of chosen, OOS Sharpe of chosen). Ranking uses Sharpe times a
    constant (both halves have the same length), so only the chosen column is rescaled. Split
    j's out-of-sample half is the in-sample half of split C - 1 - j (combinations in lexicographic
    order), so each half's scores are computed once and serve both splits. Chunks are small and
    their buffers reused so the element-wise work stays in cache.
    """
    rows, n_cols = data.shape
    size = rows // blocks
    half = size * blocks // 2
    mu = data.mean(axis=0)
    centred = data - mu  # centring keeps n*q - s^2 accurate
    sums = centred.reshape(blocks, size, n_cols).sum(axis=1)
    # n * sum of squares, so a half's n*q - s^2 is one multiply and subtract away
    squares = half * (centred**2).reshape(blocks, size, n_cols).sum(axis=1)
    flat = _FLAT * np.mean(data**2, axis=0) * half * (half - 1)
    flat[bad] = np.inf
    offset = half * mu
    total_sums, total_squares = sums.sum(axis=0), squares.sum(axis=0)
    selection = _block_selection(blocks)
    splits = len(selection)
    paired = selection[: splits // 2]
    chunk = max(1, _CHUNK_CELLS // n_cols)
    work = [np.empty((min(chunk, len(paired)), n_cols)) for _ in range(7)]
    scale = math.sqrt(half * (half - 1)) / half
    rank, is_best, oos_best = (np.empty(splits) for _ in range(3))
    for start in range(0, len(paired), chunk):
        pick = paired[start : start + chunk]
        k = len(pick)
        s, q, s_oos, q_oos, score, other, tmp = (w[:k] for w in work)
        np.matmul(pick, sums, out=s)
        np.matmul(pick, squares, out=q)
        np.subtract(total_sums, s, out=s_oos)
        np.subtract(total_squares, q, out=q_oos)
        _scaled_sharpe(s, q, offset, flat, score, tmp)
        _scaled_sharpe(s_oos, q_oos, offset, flat, other, tmp)
        rows_here = np.arange(k)
        mirror = splits - 1 - (start + rows_here)
        for at, (in_sample, out_of_sample) in ((start + rows_here, (score, other)),
                                               (mirror, (other, score))):  # fmt: skip
            best, rank[at] = _rank_chosen(in_sample, out_of_sample)
            is_best[at] = in_sample[rows_here, best] * scale
            oos_best[at] = out_of_sample[rows_here, best] * scale
    return rank, is_best, oos_best


def _scaled_sharpe(
    s: np.ndarray,
    nq: np.ndarray,
    offset: np.ndarray,
    flat: np.ndarray,
    out: np.ndarray,
    tmp: np.ndarray,
) -> None:
    """out = raw sum / sqrt(nq - s^2) from a half's centred sum s and nq = n * sum of squares.

    That is the per-period Sharpe times n / sqrt(n(n-1)); flat or bad columns get -inf.
    `nq` is overwritten.
    """
    np.multiply(s, s, out=tmp)
    nq -= tmp  # n * (n-1) * variance
    np.add(s, offset, out=out)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.sqrt(nq, out=tmp)
        out /= tmp
    np.copyto(out, -np.inf, where=nq <= flat)


def _metric_cscv(
    data: np.ndarray, bad: np.ndarray, blocks: int, metric: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slow CSCV with a caller's metric (rows x N -> N scores), one call per half and split."""
    pieces = np.split(np.arange(len(data)), blocks)
    columns = []
    for pick in _block_selection(blocks).astype(bool):
        halves = []
        for side in (pick, ~pick):
            rows = np.concatenate([p for p, on in zip(pieces, side, strict=True) if on])
            score = np.asarray(metric(data[rows]), dtype=float)
            halves.append(np.where(np.isfinite(score) & ~bad, score, -np.inf))
        columns.append(halves)
    is_metric = np.array([h[0] for h in columns])
    oos_metric = np.array([h[1] for h in columns])
    best, rank = _rank_chosen(is_metric, oos_metric)
    at = np.arange(len(best)), best
    return rank, is_metric[at], oos_metric[at]


def probability_of_backtest_overfitting(
    performance: np.ndarray,
    blocks: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Pbo:
    """PBO by CSCV over a T x N matrix (rows = periods, e.g. daily returns; columns = trials).

    The first T mod `blocks` rows are dropped so the S blocks are equal and contiguous; each of
    the C(S, S/2) splits picks the column with the best in-sample metric and logs the logit of
    its relative out-of-sample rank (rank/(N+1), ties averaged). PBO = share of logits <= 0.
    The default metric is per-period Sharpe (mean/std, ddof=1) on a fast vectorised path; a
    `metric(rows x N) -> N scores` callable takes a slow per-split path. A column holding any
    NaN/inf, a half where it is constant, or a non-finite score counts as -inf: never chosen
    unless all are, and ranked lowest. The slope is NaN if fewer than two chosen IS metrics are
    finite and distinct. Raises ValueError if `blocks` is odd or < 2, or the matrix has fewer
    than max(S, 4) rows (each half needs 2) or fewer than 2 columns.
    """
    data = np.array(performance, dtype=float)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError("performance must be a T x N matrix with N >= 2 columns")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be even and >= 2, got {blocks}")
    if len(data) < max(blocks, 4):
        raise ValueError(f"performance has {len(data)} rows; blocks={blocks} needs "
                         f"at least {max(blocks, 4)}")  # fmt: skip
    data = data[len(data) % blocks :]
    bad = ~np.isfinite(data).all(axis=0)
    data[:, bad] = 0.0
    if metric is None:
        rank, is_best, oos_best = _sharpe_cscv(data, bad, blocks)
    else:
        rank, is_best, oos_best = _metric_cscv(data, bad, blocks, metric)
    omega = rank / (data.shape[1] + 1)
    logits = np.log(omega / (1 - omega))
    return Pbo(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        n_splits=len(logits),
        is_best=is_best,
        oos_of_best=oos_best,
        degradation_slope=_slope(is_best, oos_best),
        probability_of_loss=float(np.mean(oos_best < 0)),
    )


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x over the finite pairs; NaN when it is undefined."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return math.nan
    dx = x[ok] - x[ok].mean()
    return float(dx @ (y[ok] - y[ok].mean()) / (dx @ dx))


@dataclass(frozen=True, slots=True)
class Window:
    """One validation split: contiguous, sorted train ranges and test ranges over bar indices."""

    train: tuple[range, ...]
    test: tuple[range, ...]


def walk_forward_windows(
    n: int, windows: int = 5, in_sample: float = 0.75, anchored: bool = False
) -> list[Window]:
    """Walk-forward splits of bars 0..n-1: the tests tile the tail in order, each after its train.

    Rolling trains all have length L_is, tests L_oos, with L_is/(L_is+L_oos) ~ `in_sample` and
    n = L_is + windows*L_oos; the last test absorbs the rounding remainder. Anchored trains all
    start at bar 0. Raises ValueError naming the argument when a train or test would be < 2 bars.
    """
    if windows < 1:
        raise ValueError(f"windows must be >= 1, got {windows}")
    if not 0 < in_sample < 1:
        raise ValueError(f"in_sample must be in (0, 1), got {in_sample}")
    ratio = in_sample / (1 - in_sample)
    test_len = int(n // (windows + ratio))
    train_len = round(ratio * test_len)
    if test_len < 2 or train_len < 2:
        raise ValueError(f"n={n} is too short for windows={windows} at in_sample={in_sample}: "
                         "every train and test needs at least 2 bars")  # fmt: skip
    result = []
    for i in range(windows):
        start = train_len + i * test_len
        stop = n if i == windows - 1 else start + test_len
        train = range(0 if anchored else start - train_len, start)
        result.append(Window(train=(train,), test=(range(start, stop),)))
    return result


def purged_kfold_windows(
    n: int, folds: int = 5, embargo: int = 0, test_folds: int = 1
) -> list[Window]:
    """Purged k-fold (test_folds=1, k splits) or combinatorial purged CV (C(k, p) splits).

    Bars 0..n-1 form `folds` contiguous groups of near-equal size; every combination of
    `test_folds` groups is tested once, adjacent test groups merged into one range. The train is
    every bar outside the tests minus the `embargo` bars right after each, in contiguous ranges:
    a train range never touches a test range, and one after a test starts only after the
    embargo. Purging trades that span into a test is left to the caller, who runs each train
    range on its own (trades close at the range's end). Raises ValueError on bad arguments or
    when the embargo leaves a split without train bars.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if not 1 <= test_folds < folds:
        raise ValueError(f"test_folds must be in [1, folds), got {test_folds}")
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0, got {embargo}")
    if n < folds:
        raise ValueError(f"n={n} is smaller than folds={folds}")
    edges = [i * n // folds for i in range(folds + 1)]
    result = []
    for groups in itertools.combinations(range(folds), test_folds):
        tests = _merge([range(edges[g], edges[g + 1]) for g in groups])
        blocked = np.zeros(n, dtype=bool)
        for test in tests:
            blocked[test.start : test.stop + embargo] = True
        train = _runs(~blocked)
        if not train:
            raise ValueError(f"embargo={embargo} leaves no train bars for test groups {groups}")
        result.append(Window(train=train, test=tests))
    return result


def cpcv_paths(folds: int, test_folds: int) -> int:
    """Backtest paths of combinatorial purged CV: phi = p/k * C(k, p) = C(k-1, p-1)."""
    if folds < 2 or not 1 <= test_folds < folds:
        raise ValueError(f"need folds >= 2 and 1 <= test_folds < folds, got {folds}, {test_folds}")
    return math.comb(folds - 1, test_folds - 1)


def _merge(ranges: list[range]) -> tuple[range, ...]:
    """Sorted ranges with touching neighbours joined."""
    merged: list[range] = []
    for r in ranges:
        if merged and merged[-1].stop == r.start:
            merged[-1] = range(merged[-1].start, r.stop)
        else:
            merged.append(r)
    return tuple(merged)


def _runs(mask: np.ndarray) -> tuple[range, ...]:
    """The maximal runs of True in `mask` as ranges."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return tuple(range(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))
