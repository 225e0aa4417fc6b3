// Charts with TradingView's lightweight-charts (vendored standalone build, global LightweightCharts):
// candles with a volume pane, indicator overlays on price or in their own panes, markers.
import { INDICADORES } from "./indicadores.js";
import { aSegundos, barra, barraVolumen } from "./procesador_kline.js";

const LWC = globalThis.LightweightCharts;
export const COLORES = ["#2962ff", "#ff9800", "#e040fb", "#00bcd4", "#ffeb3b", "#8bc34a"];
const UP = "#26a69a";
const DOWN = "#ef5350";

const TEMA = {
  autoSize: true,
  layout: { background: { color: "#131722" }, textColor: "#d1d4dc", panes: { separatorColor: "#2a2e39" } },
  grid: { vertLines: { color: "#1e222d" }, horzLines: { color: "#1e222d" } },
  crosshair: { mode: LWC.CrosshairMode.Normal },
  rightPriceScale: { borderColor: "#2a2e39" },
  timeScale: { borderColor: "#2a2e39", timeVisible: true, secondsVisible: false },
  localization: { locale: "es-ES" },
};

/** A candle chart in `container`; with `volumen`, a volume pane under it. */
export function crearGrafico(container, { volumen = true } = {}) {
  const chart = LWC.createChart(container, TEMA);
  const velas = chart.addSeries(LWC.CandlestickSeries, {
    upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
  });
  const grafico = { chart, velas, volumen: null, marcadores: LWC.createSeriesMarkers(velas, []) };
  if (volumen) {
    grafico.volumen = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false }, 1);
    chart.panes()[1].setStretchFactor(0.25);
  }
  return grafico;
}

/** Replace everything shown with the candles of `serie` (a SerieVelas). */
export function pintarVelas(grafico, serie) {
  grafico.velas.setData(serie.velas.map(barra));
  grafico.volumen?.setData(serie.velas.map(barraVolumen));
}

/** The last candle changed or a new one follows it: only the last bar is touched. */
export function actualizarVela(grafico, vela) {
  grafico.velas.update(barra(vela));
  grafico.volumen?.update(barraVolumen(vela));
}

export function ponerMarcadores(grafico, markers) {
  grafico.marcadores.setMarkers(markers);
}

/** A line series (equity curves, drawdown). */
export function serieLinea(chart, options = {}, pane = 0) {
  return chart.addSeries(LWC.LineSeries, { lineWidth: 2, priceLineVisible: false, ...options }, pane);
}

export function serieArea(chart, options = {}, pane = 0) {
  return chart.addSeries(LWC.AreaSeries, { lineWidth: 1, priceLineVisible: false, ...options }, pane);
}

const puntos = (velas, valores) => {
  const out = [];
  for (let i = 0; i < velas.length; i += 1) {
    const time = aSegundos(velas[i].open_time);
    out.push(Number.isFinite(valores[i]) ? { time, value: valores[i] } : { time });
  }
  return out;
};

/**
 * Indicator overlays from indicadores.js: price overlays share the candle pane, oscillators get
 * a pane each. `config` is {name: {on, params}}; recompute after every change of the candles.
 */
export class Superposiciones {
  constructor(grafico) {
    this.grafico = grafico;
    this.activas = new Map(); // name -> {lines: {line: series}, params}
  }

  /** Show, re-parameterise or hide `name` according to `ajuste` ({on, params}). */
  aplicar(name, ajuste, serie) {
    this.quitar(name);
    if (!ajuste.on) return;
    const spec = INDICADORES[name];
    const computed = spec.compute(serie.cierres(), ajuste.params);
    const pane = spec.pane === "price" ? 0 : this.grafico.chart.panes().length;
    const lines = {};
    spec.lines.forEach((line, index) => {
      const color = COLORES[(Object.keys(INDICADORES).indexOf(name) + index) % COLORES.length];
      const options = { color, lineWidth: line === "middle" || spec.lines.length === 1 ? 2 : 1, lastValueVisible: false, title: index === 0 ? `${spec.label}` : "" };
      lines[line] = line === "hist"
        ? this.grafico.chart.addSeries(LWC.HistogramSeries, { color: "#787b86", priceLineVisible: false, lastValueVisible: false }, pane)
        : serieLinea(this.grafico.chart, options, pane);
      lines[line].setData(puntos(serie.velas, computed[line]));
    });
    if (pane > 0) this.grafico.chart.panes()[pane].setStretchFactor(0.3);
    this.activas.set(name, { lines, params: ajuste.params });
  }

  quitar(name) {
    const active = this.activas.get(name);
    if (!active) return;
    for (const series of Object.values(active.lines)) this.grafico.chart.removeSeries(series);
    this.activas.delete(name);
  }

  /** Everything again (a reload or older history prepended). */
  repintar(serie) {
    const closes = serie.cierres();
    for (const [name, active] of this.activas) {
      const lines = INDICADORES[name].compute(closes, active.params);
      for (const [line, series] of Object.entries(active.lines)) series.setData(puntos(serie.velas, lines[line]));
    }
  }

  /** After a live update: recompute, then touch only the last point of each line. */
  actualizarUltima(serie) {
    const last = serie.ultima;
    const time = aSegundos(last.open_time);
    const closes = serie.cierres();
    for (const [name, active] of this.activas) {
      const lines = INDICADORES[name].compute(closes, active.params);
      for (const [line, series] of Object.entries(active.lines)) {
        const value = lines[line][lines[line].length - 1];
        series.update(Number.isFinite(value) ? { time, value } : { time });
      }
    }
  }
}
