"""The seeded price process: a daily path per symbol, its minutes, and each minute's progress."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from core.exchange.demo.symbols import DAY_MS, SymbolSpec

MINUTES_PER_DAY = 1440
# Kline value columns, in Binance's field order (open … taker buy quote volume).
OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE, TRADES, TAKER_BASE, TAKER_QUOTE = range(9)
COLUMNS = 9
# Resolution of a minute's progress: one step per 250 ms of demo time.
PROGRESS_STEPS = 240
_CHUNK_DAYS = 512
# Seed tags keep the random streams of the different layers independent.
_TAG_DAILY, _TAG_MINUTES, _TAG_PROGRESS = 1, 2, 3
_GARCH_ALPHA, _GARCH_BETA = 0.08, 0.90
_MEAN_REVERSION = 0.03
_KNOT_MINUTES = np.arange(0, MINUTES_PER_DAY + 1, 30)
_JUMP_PROBABILITY = 0.015


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng([w & 0xFFFF_FFFF_FFFF_FFFF for w in words])


@cache
def intraday_profile() -> np.ndarray:
    """Relative activity of each UTC minute (mean 1): Asia, Europe and US sessions."""
    hours = np.arange(MINUTES_PER_DAY) / 60.0
    weight = (
        0.75
        + 0.55 * np.exp(-(((hours - 14.5) / 2.2) ** 2))
        + 0.25 * np.exp(-(((hours - 8.5) / 1.8) ** 2))
        + 0.20 * np.exp(-(((hours - 1.0) / 1.5) ** 2))
    )
    weight[::60] *= 1.3  # activity bursts at the top of each hour, as on real exchanges
    return weight / weight.mean()


class DailyPath:
    """Day-level path of one symbol from its listing day: opens, volatility, jumps, activity.

    Volatility follows a GARCH(1,1) with Student-t shocks and rare jumps; the log price is a
    mean-reverting deviation around the symbol's anchor curve, so every seed stays plausible.
    Generated once, in chunks, as far as the demo clock has reached.
    """

    def __init__(self, spec: SymbolSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.opens = np.zeros(1, dtype=np.int64)  # price units; opens[d + 1] closes day d
        self.sigma = np.zeros(0)
        self.jump = np.zeros(0)
        self.quote_volume = np.zeros(0)
        self.trades = np.zeros(0, dtype=np.int64)
        self.trade_base = np.zeros(1, dtype=np.int64)  # trades before day d
        self._deviation = 0.0
        self._variance = spec.daily_vol**2
        anchor_days, anchor_prices = zip(*spec.anchors, strict=True)
        self._anchor_ms = np.array([np.datetime64(a, "ms").astype(np.int64) for a in anchor_days])
        self._anchor_log = np.log(np.array(anchor_prices, dtype=float))
        self._reference_price = float(np.exp(np.median(self._anchor_log)))
        self.opens[0] = self._to_units(float(self._anchor_level(np.array([0]))[0]))

    @property
    def days(self) -> int:
        return len(self.sigma)

    def ensure(self, days: int) -> None:
        """Extend the path until it covers `days` days from the listing day."""
        while self.days < days:
            self._extend()

    def _anchor_level(self, day_index: np.ndarray) -> np.ndarray:
        day_ms = self.spec.onboard_ms + day_index * DAY_MS
        return np.interp(day_ms, self._anchor_ms, self._anchor_log)

    def _to_units(self, log_price: float) -> int:
        tick = self.spec.tick_units
        units = math.exp(log_price) * 10**self.spec.price_decimals
        return max(tick, round(units / tick) * tick)

    def _extend(self) -> None:
        start = self.days
        rng = _rng(self.seed, self.spec.key, start // _CHUNK_DAYS, _TAG_DAILY)
        shocks = rng.standard_t(5, _CHUNK_DAYS) * math.sqrt(3 / 5)
        jumps = rng.normal(0.0, 3 * self.spec.daily_vol, _CHUNK_DAYS)
        jumps *= rng.random(_CHUNK_DAYS) < _JUMP_PROBABILITY
        volume_noise = rng.normal(0.0, 0.25, _CHUNK_DAYS)
        trade_noise = rng.normal(0.0, 0.1, _CHUNK_DAYS)
        index = np.arange(start, start + _CHUNK_DAYS + 1)
        weekend = ((self.spec.onboard_ms // DAY_MS + index[:-1] + 3) % 7) >= 5
        calm = np.where(weekend, 0.8, 1.0)
        sigma = np.empty(_CHUNK_DAYS)
        deviation = np.empty(_CHUNK_DAYS + 1)
        deviation[0] = self._deviation
        long_run = self.spec.daily_vol**2
        omega = long_run * (1 - _GARCH_ALPHA - _GARCH_BETA)
        variance = self._variance
        for i in range(_CHUNK_DAYS):
            sigma[i] = math.sqrt(variance) * calm[i]
            shock = sigma[i] * shocks[i] + jumps[i]
            deviation[i + 1] = (1 - _MEAN_REVERSION) * deviation[i] + shock
            variance = omega + _GARCH_ALPHA * shock * shock + _GARCH_BETA * variance
            variance = min(variance, 9 * long_run)
        self._deviation, self._variance = float(deviation[-1]), variance
        level = self._anchor_level(index) + deviation
        opens = np.array([self._to_units(x) for x in level[1:]], dtype=np.int64)
        self._append(start, sigma, jumps, opens, weekend, volume_noise, trade_noise, level)

    def _append(self, start, sigma, jumps, opens, weekend, volume_noise, trade_noise, level):
        spec = self.spec
        maturity = np.minimum(1.0, 0.2 + 0.8 * np.arange(start, start + len(sigma)) / 900)
        price_factor = (np.exp(level[:-1]) / self._reference_price) ** 0.4
        activity = (sigma / spec.daily_vol) ** 0.8 * np.where(weekend, 0.65, 1.0)
        quote = spec.quote_volume * maturity * price_factor * activity * np.exp(volume_noise)
        trades = np.maximum(2 * MINUTES_PER_DAY, quote / spec.avg_trade * np.exp(trade_noise))
        trades = trades.astype(np.int64)
        self.opens = np.concatenate([self.opens, opens])
        self.sigma = np.concatenate([self.sigma, sigma])
        self.jump = np.concatenate([self.jump, jumps])
        self.quote_volume = np.concatenate([self.quote_volume, quote])
        self.trades = np.concatenate([self.trades, trades])
        self.trade_base = np.concatenate([self.trade_base, self.trade_base[-1] + np.cumsum(trades)])


def day_minutes(path: DailyPath, day: int) -> np.ndarray:
    """The (1440, 9) int64 kline values of every minute of `day` (days since listing).

    A Brownian bridge in log price from the day's open to its close, shaped by the intraday
    profile and local volatility clusters; prices on the tick grid and quantities on the step
    grid before anything is summed, so every higher interval aggregates exactly.
    """
    path.ensure(day + 1)
    rng = _rng(path.seed, path.spec.key, day, _TAG_MINUTES)
    tick = path.spec.tick_units
    first, last = int(path.opens[day]), int(path.opens[day + 1])
    normal = rng.standard_normal((5, MINUTES_PER_DAY))
    uniform = rng.random((3, MINUTES_PER_DAY))
    knots = rng.standard_normal(MINUTES_PER_DAY // 30 + 1)
    clusters = np.exp(0.35 * np.interp(np.arange(MINUTES_PER_DAY), _KNOT_MINUTES, knots))
    weight = intraday_profile() * clusters
    share = weight / weight.sum()
    scale = path.sigma[day] * np.sqrt(share)
    # A few minutes with 2.5x shocks give the fat tails of real returns (unit variance kept).
    shocks = normal[0] * np.where(uniform[0] < 0.04, 2.5, 1.0) / 1.1
    steps = scale * shocks
    steps[int(uniform[0, 0] * 1e6) % MINUTES_PER_DAY] += path.jump[day]
    walk = np.cumsum(steps)
    walk -= np.cumsum(share) * (walk[-1] - math.log(last / first))
    closes = np.maximum(tick, np.rint(first * np.exp(walk) / tick).astype(np.int64) * tick)
    closes[-1] = last
    rows = np.empty((MINUTES_PER_DAY, COLUMNS), dtype=np.int64)
    rows[:, CLOSE] = closes
    rows[0, OPEN], rows[1:, OPEN] = first, closes[:-1]
    top = np.maximum(rows[:, OPEN], closes)
    bottom = np.minimum(rows[:, OPEN], closes)
    rows[:, HIGH] = top + (top * np.abs(normal[1]) * 0.6 * scale / tick).astype(np.int64) * tick
    wick = (bottom * np.abs(normal[2]) * 0.6 * scale / tick).astype(np.int64) * tick
    rows[:, LOW] = np.maximum(tick, bottom - wick)
    busy = share**0.8 * (0.6 + 0.5 * np.abs(shocks)) * np.exp(0.4 * normal[3])
    _activity(rows, path, day, busy / busy.sum(), uniform[1] + uniform[2], normal[4])
    return rows


def _activity(rows, path: DailyPath, day: int, busy, spread, noise) -> None:
    """Volumes, trade counts and taker-buy side of each minute, in steps and quote units."""
    spec = path.spec
    tick = spec.tick_units
    # Rounded cumulative shares split the day's trade count exactly over its minutes.
    cumulative = np.rint(np.cumsum(busy) * (int(path.trades[day]) - MINUTES_PER_DAY))
    cumulative[-1] = int(path.trades[day]) - MINUTES_PER_DAY
    trades = 1 + np.diff(cumulative, prepend=0.0).astype(np.int64)
    price = rows[:, CLOSE] / 10**spec.price_decimals
    quote = path.quote_volume[day] * busy
    volume = np.maximum(trades, np.rint(quote / price * 10**spec.qty_decimals).astype(np.int64))
    span = rows[:, HIGH] - rows[:, LOW]
    vwap = rows[:, LOW] + np.rint(span * spread / 2 / tick).astype(np.int64) * tick
    drift = (rows[:, CLOSE] - rows[:, OPEN]) / np.maximum(span, tick)
    taker = np.clip(0.5 + 0.3 * drift + 0.05 * noise, 0.05, 0.95)
    taker_volume = np.rint(volume * taker).astype(np.int64)
    rows[:, VOLUME], rows[:, TRADES], rows[:, TAKER_BASE] = volume, trades, taker_volume
    rows[:, QUOTE], rows[:, TAKER_QUOTE] = volume * vwap, taker_volume * vwap


@dataclass(frozen=True, slots=True)
class MinuteProgress:
    """How one minute unfolds: its price after each 250 ms step and its share of activity."""

    prices: np.ndarray  # PROGRESS_STEPS + 1 prices; [0] is the open, [-1] the close
    highs: np.ndarray  # running maximum of `prices`
    lows: np.ndarray  # running minimum of `prices`
    done: np.ndarray  # cumulative fraction of the minute's activity, 0 … 1


def minute_progress(path: DailyPath, minute: int, row: np.ndarray) -> MinuteProgress:
    """The intra-minute path of the minute with index `minute` since listing, ending at `row`.

    It starts at the open, touches the high and the low exactly once each at seeded instants,
    ends at the close and never leaves [low, high], so its running state converges on `row`.
    """
    rng = _rng(path.seed, path.spec.key, minute, _TAG_PROGRESS)
    tick = path.spec.tick_units
    low, high = int(row[LOW]), int(row[HIGH])
    first, second = np.sort(rng.choice(np.arange(1, PROGRESS_STEPS), 2, replace=False))
    high_first = rng.random() < (0.65 if row[CLOSE] < row[OPEN] else 0.35)
    middle = (high, low) if high_first else (low, high)
    knots = np.array([0, first, second, PROGRESS_STEPS])
    values = np.array([row[OPEN], *middle, row[CLOSE]], dtype=float)
    steps = np.arange(PROGRESS_STEPS + 1)
    walk = np.concatenate([[0.0], np.cumsum(rng.normal(0, 1, PROGRESS_STEPS))])
    segment = np.clip(np.searchsorted(knots, steps, side="right") - 1, 0, 2)
    start, end = knots[segment], knots[segment + 1]
    bridge = walk - walk[start] - (steps - start) / (end - start) * (walk[end] - walk[start])
    noise = bridge * (high - low) * 0.12 / math.sqrt(PROGRESS_STEPS / 3)
    raw = np.interp(steps, knots, values) + noise
    prices = np.clip(np.rint(raw / tick).astype(np.int64) * tick, low, high)
    prices[knots] = values.astype(np.int64)
    pace = np.concatenate([[0.0], np.cumsum(rng.exponential(1.0, PROGRESS_STEPS))])
    return MinuteProgress(
        prices=prices,
        highs=np.maximum.accumulate(prices),
        lows=np.minimum.accumulate(prices),
        done=pace / pace[-1],
    )


def partial_minute(row: np.ndarray, progress: MinuteProgress, step: int) -> np.ndarray:
    """The minute's kline values after `step` of its PROGRESS_STEPS (monotone towards `row`)."""
    done = progress.done[step]
    trades = int(row[TRADES])
    partial = np.empty(COLUMNS, dtype=np.int64)
    partial[OPEN] = row[OPEN]
    partial[HIGH], partial[LOW], partial[CLOSE] = (
        progress.highs[step],
        progress.lows[step],
        progress.prices[step],
    )
    partial[TRADES] = 1 + math.floor((trades - 1) * done)
    partial[VOLUME] = partial[TRADES] + math.floor((int(row[VOLUME]) - trades) * done)
    partial[TAKER_BASE] = min(partial[VOLUME], math.floor(int(row[TAKER_BASE]) * done))
    vwap = int(row[QUOTE]) // int(row[VOLUME])
    partial[QUOTE], partial[TAKER_QUOTE] = partial[VOLUME] * vwap, partial[TAKER_BASE] * vwap
    return partial
