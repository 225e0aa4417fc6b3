/**
 * Technical indicators for the dashboard's chart overlays: the browser twin of the Python
 * package `indicadores/`, with the same numbers (to rounding) and the same conventions:
 *
 * - Inputs: arrays or typed arrays of numbers, never modified. Outputs: new Float64Arrays of
 *   the input's length (an object of them, with the Python NamedTuple's field names, for
 *   multi-line indicators).
 * - Warm-up: NaN for exactly as many values as TA-Lib's lookback (period - 1 for sma, ema, wma
 *   and bollinger; period for rsi; slow + signal - 2 for macd).
 * - Missing values (NaN, null, undefined, ±Infinity): leading ones are skipped and the warm-up
 *   starts at the first number, so indicators can be chained. A later one gives NaN in every
 *   window that holds it (sma, wma, bollinger) and from there on in the recursions (ema, rsi,
 *   macd); with a period of 1 a recursion simply copies its input, NaN included, as in Python.
 * - Bad periods throw RangeError naming the parameter (Python's ValueError cases); an input
 *   that is not an array of numbers throws TypeError.
 * - Every function is O(n). Window sums run on deviations from a level that is reset every few
 *   windows (and summed afresh there), so rounding stays at the scale of the price moves rather
 *   than drifting with the price level over long series.
 *
 * @module indicadores
 */

/** A series as every indicator accepts it. @typedef {ArrayLike<number | null | undefined>} Values */

/** Running window sums are summed afresh every max(MIN_BLOCK, BLOCK_WINDOWS * period) values. */
const BLOCK_WINDOWS = 4;
const MIN_BLOCK = 32;

/**
 * The input as a fresh Float64Array with every missing value (null, undefined, NaN, ±Infinity)
 * turned into NaN.
 * @param {Values} values
 * @returns {Float64Array}
 */
function toSeries(values) {
  const typed = ArrayBuffer.isView(values) && !(values instanceof DataView);
  if (!typed && !Array.isArray(values)) {
    throw new TypeError(`values must be an array or a typed array of numbers, got ${values}`);
  }
  const series = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value == null) {
      series[i] = NaN;
    } else if (typeof value === "number") {
      series[i] = Number.isFinite(value) ? value : NaN;
    } else {
      throw new TypeError(`values[${i}] is not a number: ${JSON.stringify(value)}`);
    }
  }
  return series;
}

/**
 * `period` itself if it is an integer >= 1; RangeError naming the parameter otherwise.
 * @param {unknown} period
 * @param {string} [name]
 * @returns {number}
 */
function checkPeriod(period, name = "period") {
  if (!Number.isInteger(period) || /** @type {number} */ (period) < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${String(period)}`);
  }
  return /** @type {number} */ (period);
}

/** @param {number} length */
function nans(length) {
  return new Float64Array(length).fill(NaN);
}

/**
 * Index of the first number in `series` (its length if there is none).
 * @param {Float64Array} series
 */
function firstValid(series) {
  let i = 0;
  while (i < series.length && Number.isNaN(series[i])) i++;
  return i;
}

/**
 * Mean, population standard deviation and linearly weighted mean (weights 1..n, newest
 * heaviest) of each window of n values ending at i, for the lines asked for.
 *
 * Leading NaNs are skipped; a later NaN is replaced by the last number before it for the sums
 * and every window holding it is NaN. A window without a single change of value has a standard
 * deviation of exactly 0 (as in Python, where the rounding residue would otherwise show).
 *
 * @param {Float64Array} series
 * @param {number} n
 * @param {{mean?: boolean, std?: boolean, weighted?: boolean}} wanted
 * @returns {{mean: Float64Array, std: Float64Array, weighted: Float64Array}}
 */
function windowed(series, n, wanted) {
  const length = series.length;
  const wantMean = Boolean(wanted.mean);
  const wantStd = Boolean(wanted.std);
  const wantWeighted = Boolean(wanted.weighted);
  const empty = new Float64Array(0);
  const mean = wantMean ? nans(length) : empty;
  const std = wantStd ? nans(length) : empty;
  const weighted = wantWeighted ? nans(length) : empty;
  const start = firstValid(series);
  if (start + n > length) return { mean, std, weighted };

  // The body past the leading NaNs; later NaNs are filled forward (in a copy) and flagged.
  const size = length - start;
  let body = series.subarray(start);
  let missing = new Uint8Array(0);
  if (body.includes(NaN)) {
    body = body.slice();
    missing = new Uint8Array(size);
    for (let t = 1; t < size; t++) {
      if (Number.isNaN(body[t])) {
        missing[t] = 1;
        body[t] = body[t - 1];
      }
    }
  }
  const hasGaps = missing.length > 0;

  const block = Math.max(MIN_BLOCK, BLOCK_WINDOWS * n);
  const weightTotal = (n * (n + 1)) / 2;
  let level = 0; // the block's reference value: sums are of deviations from it
  let sum = 0; // sum of deviations in the window
  let squares = 0; // sum of squared deviations
  let weightedSum = 0; // deviations weighted 1..n, oldest to newest
  let moves = 0; // neighbours within the window that differ
  let gaps = 0; // missing values within the window
  let nextBlock = n - 1;
  for (let t = n - 1; t < size; t++) {
    if (t === nextBlock) {
      nextBlock += block;
      level = body[t];
      sum = squares = weightedSum = 0;
      moves = gaps = 0;
      for (let j = t - n + 1, weight = 1; j <= t; j++, weight++) {
        const deviation = body[j] - level;
        sum += deviation;
        squares += deviation * deviation;
        weightedSum += weight * deviation;
        if (j > t - n + 1 && body[j] !== body[j - 1]) moves++;
        if (hasGaps) gaps += missing[j];
      }
    } else {
      const incoming = body[t] - level;
      const outgoing = body[t - n] - level;
      weightedSum += n * incoming - sum; // every weight drops by one, the oldest to zero
      sum += incoming - outgoing;
      squares += incoming * incoming - outgoing * outgoing;
      if (body[t] !== body[t - 1]) moves++;
      if (body[t - n + 1] !== body[t - n]) moves--;
      if (hasGaps) gaps += missing[t] - missing[t - n];
    }
    if (gaps > 0) continue;
    const i = start + t;
    const average = sum / n;
    if (wantMean) mean[i] = level + average;
    if (wantWeighted) weighted[i] = level + weightedSum / weightTotal;
    if (wantStd) {
      const variance = squares / n - average * average;
      std[i] = moves > 0 && variance > 0 ? Math.sqrt(variance) : 0;
    }
  }
  return { mean, std, weighted };
}

/**
 * out[start] = seed, then out[i] = out[i-1] + alpha * (x[i] - out[i-1]); NaN before `start`.
 * A NaN (in x or the seed) makes every later value NaN, except with alpha = 1, where the
 * output simply copies x (as Python's closed form does).
 * @param {Float64Array} x
 * @param {number} alpha
 * @param {number} start
 * @param {number} seed
 * @returns {Float64Array}
 */
function smooth(x, alpha, start, seed) {
  const out = nans(x.length);
  if (start >= x.length) return out;
  out[start] = seed;
  if (alpha >= 1) {
    out.set(x.subarray(start + 1), start + 1);
    return out;
  }
  let previous = seed;
  for (let i = start + 1; i < x.length; i++) {
    previous += alpha * (x[i] - previous);
    out[i] = previous;
  }
  return out;
}

/**
 * Mean of x[from .. to] inclusive (NaN if any is NaN).
 * @param {Float64Array} x
 * @param {number} from
 * @param {number} to
 */
function meanOf(x, from, to) {
  let total = 0;
  for (let i = from; i <= to; i++) total += x[i];
  return total / (to - from + 1);
}

/**
 * EMA of x seeded at index first + n - 1 with the mean of x[first .. first + n - 1] (TA-Lib's
 * seed); all NaN when x is too short.
 * @param {Float64Array} x
 * @param {number} n
 * @param {number} first
 */
function emaFrom(x, n, first) {
  const seedAt = first + n - 1;
  if (seedAt >= x.length) return nans(x.length);
  return smooth(x, 2 / (n + 1), seedAt, meanOf(x, first, seedAt));
}

/**
 * Simple moving average of the last `period` values (TA-Lib SMA).
 * @param {Values} values
 * @param {number} period
 * @returns {Float64Array} NaN for the first period - 1 values and every window holding a NaN
 */
export function sma(values, period) {
  const series = toSeries(values);
  return windowed(series, checkPeriod(period), { mean: true }).mean;
}

/**
 * Exponential moving average, alpha = 2 / (period + 1), seeded with the SMA of the first
 * `period` values (TA-Lib EMA). A NaN after the first number makes every later value NaN.
 * @param {Values} values
 * @param {number} period
 * @returns {Float64Array} NaN for the first period - 1 values
 */
export function ema(values, period) {
  const series = toSeries(values);
  return emaFrom(series, checkPeriod(period), firstValid(series));
}

/**
 * Linearly weighted moving average, weights 1..period with the newest heaviest (TA-Lib WMA).
 * @param {Values} values
 * @param {number} period
 * @returns {Float64Array} NaN for the first period - 1 values and every window holding a NaN
 */
export function wma(values, period) {
  const series = toSeries(values);
  return windowed(series, checkPeriod(period), { weighted: true }).weighted;
}

/**
 * Bollinger bands (TA-Lib BBANDS with an SMA middle): middle ± k population standard
 * deviations of the last `period` values.
 * @param {Values} values
 * @param {number} [period]
 * @param {number} [k] a finite number >= 0
 * @returns {{upper: Float64Array, middle: Float64Array, lower: Float64Array}}
 */
export function bollinger(values, period = 20, k = 2) {
  const series = toSeries(values);
  const n = checkPeriod(period);
  if (typeof k !== "number" || !(k >= 0 && k < Infinity)) {
    throw new RangeError(`k must be a finite number >= 0, got ${String(k)}`);
  }
  const { mean, std } = windowed(series, n, { mean: true, std: true });
  const upper = new Float64Array(series.length);
  const lower = new Float64Array(series.length);
  for (let i = 0; i < series.length; i++) {
    const deviation = std[i] * k;
    upper[i] = mean[i] + deviation;
    lower[i] = mean[i] - deviation;
  }
  return { upper, middle: mean, lower };
}

/**
 * Wilder's RSI (TA-Lib RSI): average gain and loss start as the plain means of the first
 * `period` changes and are then smoothed with alpha = 1 / period;
 * rsi = 100 * gain / (gain + loss), and 0 when both are 0.
 * @param {Values} values
 * @param {number} [period]
 * @returns {Float64Array} NaN for the first `period` values; a later NaN makes the rest NaN
 */
export function rsi(values, period = 14) {
  const series = toSeries(values);
  const n = checkPeriod(period);
  const out = nans(series.length);
  const start = firstValid(series);
  if (start + n >= series.length) return out;
  // Average gain and loss: plain means of the first n changes, then Wilder's smoothing (with
  // n = 1 the latest change itself, as Python's smoothing copies its input for alpha = 1).
  const alpha = 1 / n;
  let gain = 0;
  let loss = 0;
  for (let j = 0; start + j + 1 < series.length; j++) {
    const change = series[start + j + 1] - series[start + j];
    // Math.max keeps a NaN change NaN, as np.maximum does.
    const up = Math.max(change, 0);
    const down = Math.max(-change, 0);
    if (j < n) {
      gain += up;
      loss += down;
      if (j < n - 1) continue;
      gain /= n;
      loss /= n;
    } else if (n === 1) {
      gain = up;
      loss = down;
    } else {
      gain += alpha * (up - gain);
      loss += alpha * (down - loss);
    }
    const total = gain + loss;
    out[start + 1 + j] = total === 0 ? 0 : (100 * gain) / total;
  }
  return out;
}

/**
 * MACD (TA-Lib MACD): macd = EMA(fast) - EMA(slow), signal = EMA(signal) of macd,
 * hist = macd - signal. Both EMAs start at index slow - 1, the fast one seeded with the mean
 * of the `fast` values ending there; all three lines are NaN for the first slow + signal - 2
 * values. Throws RangeError for bad periods or fast >= slow.
 * @param {Values} values
 * @param {number} [fast]
 * @param {number} [slow]
 * @param {number} [signal]
 * @returns {{macd: Float64Array, signal: Float64Array, hist: Float64Array}}
 */
export function macd(values, fast = 12, slow = 26, signal = 9) {
  const series = toSeries(values);
  checkPeriod(fast, "fast");
  checkPeriod(slow, "slow");
  checkPeriod(signal, "signal");
  if (fast >= slow) throw new RangeError(`fast (${fast}) must be smaller than slow (${slow})`);
  const length = series.length;
  const start = firstValid(series);
  const fastLine = emaFrom(series, fast, start + slow - fast);
  const slowLine = emaFrom(series, slow, start);
  const line = new Float64Array(length);
  for (let i = 0; i < length; i++) line[i] = fastLine[i] - slowLine[i];
  const lineStart = start + slow - 1;
  const signalLine = nans(length);
  if (lineStart < length) signalLine.set(emaFrom(line.subarray(lineStart), signal, 0), lineStart);
  line.fill(NaN, 0, Math.min(length, lineStart + signal - 1));
  const hist = new Float64Array(length);
  for (let i = 0; i < length; i++) hist[i] = line[i] - signalLine[i];
  return { macd: line, signal: signalLine, hist };
}

/**
 * @typedef {object} Param
 * @property {string} name    argument name, also the key in `compute`'s params
 * @property {number} default
 * @property {number} min
 * @property {number} max
 * @property {number} step    1 for periods
 */

/**
 * @typedef {object} Indicator
 * @property {string} label   short name for the UI
 * @property {"price" | "rsi" | "macd"} pane   where the lines are drawn
 * @property {string[]} lines  names of the lines `compute` returns, in drawing order
 * @property {Param[]} params
 * @property {(closes: Values, params?: Record<string, number>) => Record<string, Float64Array>}
 *   compute  missing params take their defaults
 */

/**
 * @param {string} name
 * @param {number} value the default
 * @param {number} min
 * @param {number} max
 * @param {number} [step]
 * @returns {Param}
 */
const param = (name, value, min, max, step = 1) => ({ name, default: value, min, max, step });

/**
 * The indicators the chart offers, keyed by the name used throughout the app.
 * @type {Readonly<Record<string, Indicator>>}
 */
export const INDICADORES = Object.freeze({
  sma: {
    label: "SMA",
    pane: "price",
    lines: ["sma"],
    params: [param("period", 20, 2, 500)],
    compute: (closes, { period = 20 } = {}) => ({ sma: sma(closes, period) }),
  },
  ema: {
    label: "EMA",
    pane: "price",
    lines: ["ema"],
    params: [param("period", 20, 2, 500)],
    compute: (closes, { period = 20 } = {}) => ({ ema: ema(closes, period) }),
  },
  bollinger: {
    label: "Bollinger",
    pane: "price",
    lines: ["upper", "middle", "lower"],
    params: [param("period", 20, 2, 500), param("k", 2, 0.5, 5, 0.1)],
    compute: (closes, { period = 20, k = 2 } = {}) => bollinger(closes, period, k),
  },
  rsi: {
    label: "RSI",
    pane: "rsi",
    lines: ["rsi"],
    params: [param("period", 14, 2, 100)],
    compute: (closes, { period = 14 } = {}) => ({ rsi: rsi(closes, period) }),
  },
  macd: {
    label: "MACD",
    pane: "macd",
    lines: ["macd", "signal", "hist"],
    params: [param("fast", 12, 2, 100), param("slow", 26, 3, 200), param("signal", 9, 2, 100)],
    compute: (closes, { fast = 12, slow = 26, signal = 9 } = {}) =>
      macd(closes, fast, slow, signal),
  },
});
