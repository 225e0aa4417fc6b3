// Strategy signals, stored crossovers and backtest trades as chart markers and list items.
import { api, consulta } from "./api.js";
import { aSegundos } from "./procesador_kline.js";

const UP = "#26a69a";
const DOWN = "#ef5350";

/** Crossovers from /cruces: below the bar when bullish, above when bearish. */
export function marcadorDeCruce(cruce) {
  const alcista = cruce.tipo === "alcista";
  return {
    time: aSegundos(cruce.open_time), position: alcista ? "belowBar" : "aboveBar",
    color: alcista ? UP : DOWN, shape: alcista ? "arrowUp" : "arrowDown",
    text: alcista ? "▲ cruce" : "▼ cruce", id: `cruce-${cruce.open_time}`,
  };
}

/** A live `senal` message from the bridge: position after the closed candle. */
export function marcadorDeSenal(senal) {
  const largo = senal.posicion > 0;
  const plano = senal.posicion === 0;
  return {
    time: aSegundos(senal.open_time), position: largo ? "belowBar" : "aboveBar",
    color: plano ? "#787b86" : largo ? UP : DOWN, shape: plano ? "circle" : largo ? "arrowUp" : "arrowDown",
    text: `${senal.estrategia}: ${plano ? "cierra" : largo ? "largo" : "corto"}`, id: `senal-${senal.open_time}-${senal.estrategia}`,
  };
}

/**
 * A signal of /senales over the loaded history; its id is the live signal's, so a live `senal`
 * for the same candle replaces it instead of doubling it.
 */
export function marcadorDeSenalHistorica(senal, estrategia) {
  const largo = senal.posicion > 0;
  const plano = senal.posicion === 0;
  return {
    time: aSegundos(senal.open_time), position: largo ? "belowBar" : "aboveBar",
    color: plano ? "#787b86" : largo ? UP : DOWN, shape: plano ? "circle" : largo ? "arrowUp" : "arrowDown",
    text: plano ? "cierra" : largo ? "largo" : "corto", id: `senal-${senal.open_time}-${estrategia}`,
  };
}

/**
 * Backtest trades: an entry arrow (L/S) and an exit dot coloured by the trade's result each.
 * With `prefijo`, every marker gets an id under it (a bot's trades beside other markers).
 */
export function marcadoresDeTrades(trades, prefijo = "") {
  const markers = [];
  const id = (kind, time) => (prefijo ? { id: `${prefijo}-${kind}-${time}` } : {});
  for (const t of trades) {
    const long = t.side === "long";
    markers.push({ time: aSegundos(t.entry_time), position: long ? "belowBar" : "aboveBar", color: long ? UP : DOWN,
      shape: long ? "arrowUp" : "arrowDown", text: long ? "L" : "S", ...id("entrada", t.entry_time) });
    if (t.exit_time !== null && t.exit_time !== undefined) {
      markers.push({ time: aSegundos(t.exit_time), position: long ? "aboveBar" : "belowBar",
        color: t.pnl >= 0 ? UP : DOWN, shape: "circle", text: "", ...id("salida", t.exit_time) });
    }
  }
  return markers.sort((a, b) => a.time - b.time);
}

/** Markers sorted by time with duplicates (same id) removed, as the chart requires. */
export function ordenarMarcadores(markers) {
  const byKey = new Map(markers.map((m) => [m.id ?? `${m.time}-${m.text}`, m]));
  return [...byKey.values()].sort((a, b) => a.time - b.time);
}

export async function cargarCruces(symbol, interval, since) {
  const data = await api(`/cruces?${consulta({ symbol, interval, since, limit: 1000 })}`);
  return data.cruces;
}

/** A strategy's signals over the latest `limit` stored candles (GET /senales), oldest first. */
export async function cargarSenales(symbol, interval, estrategia, limit) {
  const data = await api(`/senales?${consulta({ symbol, interval, estrategia, limit })}`);
  return data.senales;
}

export async function listarEstrategias() {
  return (await api("/estrategias")).estrategias;
}
