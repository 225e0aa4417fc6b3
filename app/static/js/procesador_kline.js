// Candles from /velas and from the bridge into chart bars, kept in one ordered store.
// Binance speaks milliseconds; the chart wants seconds: the conversion lives here only.

export const aSegundos = (ms) => Math.floor(ms / 1000);

const UP = "rgba(38, 166, 154, 0.5)";
const DOWN = "rgba(239, 83, 80, 0.5)";

/** {open_time, open, high, low, close, volume, closed} with numbers (Binance sends strings). */
export function normalizarVela(v) {
  return {
    open_time: Number(v.open_time), open: Number(v.open), high: Number(v.high), low: Number(v.low),
    close: Number(v.close), volume: Number(v.volume), closed: Boolean(v.closed),
  };
}

export const barra = (v) => ({ time: aSegundos(v.open_time), open: v.open, high: v.high, low: v.low, close: v.close });
export const barraVolumen = (v) => ({ time: aSegundos(v.open_time), value: v.volume, color: v.close >= v.open ? UP : DOWN });

/** Candles of one (symbol, interval), ordered by open time, without duplicates. */
export class SerieVelas {
  constructor(symbol, interval) {
    this.symbol = symbol;
    this.interval = interval;
    this.velas = [];
    this.closes = new Float64Array(0); // kept in step with `velas`, with room to grow
  }

  get length() { return this.velas.length; }
  get primera() { return this.velas[0]; }
  get ultima() { return this.velas[this.velas.length - 1]; }

  /** Closing prices for the indicators: a view, valid until the next change. */
  cierres() { return this.closes.subarray(0, this.velas.length); }

  #ponerCierre(index, close) {
    if (index >= this.closes.length) {
      const grown = new Float64Array(Math.max(1024, this.closes.length * 2));
      grown.set(this.closes);
      this.closes = grown;
    }
    this.closes[index] = close;
  }

  /** Merge a batch (REST page, bridge snapshot): later data wins on the same open time. */
  fusionar(lote) {
    const byTime = new Map(this.velas.map((v) => [v.open_time, v]));
    for (const raw of lote) {
      const vela = normalizarVela(raw);
      byTime.set(vela.open_time, vela);
    }
    this.velas = [...byTime.values()].sort((a, b) => a.open_time - b.open_time);
    this.closes = Float64Array.from(this.velas, (v) => v.close);
  }

  /**
   * Apply one live update: "actualizada" when it is the last candle, "nueva" when it follows it,
   * "ignorada" for an older one (the chart can only change its last bar) and "hueco" when it
   * jumps ahead (the caller reloads).
   */
  aplicar(raw) {
    const vela = normalizarVela(raw);
    const last = this.ultima;
    if (!last || vela.open_time > last.open_time) {
      this.#ponerCierre(this.velas.length, vela.close);
      this.velas.push(vela);
      return "nueva";
    }
    if (vela.open_time === last.open_time) {
      this.velas[this.velas.length - 1] = vela;
      this.closes[this.velas.length - 1] = vela.close;
      return "actualizada";
    }
    return "ignorada";
  }
}
