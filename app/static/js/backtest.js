// The backtest page: a form built from /estrategias, POST /backtest, then metrics, the equity
// curve with its drawdown, the trade list and the trades as markers on the candles.
import { api, conToken, consulta } from "./api.js";
import { marcadoresDeTrades } from "./estrategias.js";
import { crearGrafico, pintarVelas, ponerMarcadores, serieArea, serieLinea } from "./grafico_utils.js";
import { aSegundos, SerieVelas } from "./procesador_kline.js";
import { cargarSesion, configuracion, guardarSesion } from "./session_utils.js";

const $ = (id) => document.getElementById(id);
const form = $("bt-form");
const config = configuracion();
const MAX_CANDLES = 10_000; // what /velas serves at once
const DAY_MS = 86_400_000;
let strategies = [];
let charts = null;

const METRICS = [
  ["total_return", "Retorno total", "pct"], ["annualized_return", "Retorno anualizado", "pct"],
  ["buy_hold_return", "Comprar y mantener", "pct"], ["sharpe", "Sharpe", "num"], ["sortino", "Sortino", "num"],
  ["calmar", "Calmar", "num"], ["max_drawdown", "Drawdown máximo", "pct"], ["volatility", "Volatilidad anual", "pct"],
  ["trades", "Operaciones", "int"], ["win_rate", "Tasa de acierto", "pct"], ["profit_factor", "Profit factor", "num"],
  ["expectancy", "Esperanza por operación (USDT)", "num"], ["avg_trade", "Operación media", "pct"],
  ["best_trade", "Mejor operación", "pct"], ["worst_trade", "Peor operación", "pct"], ["exposure", "Exposición", "pct"],
  ["total_fees", "Comisiones (USDT)", "num"], ["total_funding", "Funding (USDT)", "num"], ["liquidations", "Liquidaciones", "int"],
  ["final_equity", "Capital final (USDT)", "num"],
];

const formatear = (value, kind) => {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (kind === "pct") return `${(value * 100).toFixed(2)} %`;
  if (kind === "int") return String(value);
  return Number(value).toLocaleString("es-ES", { maximumFractionDigits: 2 });
};
const fecha = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
const formatoPrecio = (x) => (x === null || x === undefined ? "—" : String(Number(x.toPrecision(8))));

function campoParametro(p) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const id = `bt-param-${p.nombre}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = p.nombre;
  label.title = p.descripcion;
  let input;
  if (p.opciones) {
    input = document.createElement("select");
    for (const option of p.opciones) input.append(new Option(option, option, false, option === p.defecto));
  } else {
    input = document.createElement("input");
    input.type = p.tipo === "bool" ? "checkbox" : "number";
    if (p.tipo === "bool") input.checked = Boolean(p.defecto);
    else Object.assign(input, { value: p.defecto, step: p.tipo === "int" ? 1 : "any" });
    if (p.minimo !== null) input.min = p.minimo;
    if (p.maximo !== null) input.max = p.maximo;
  }
  input.id = id;
  input.name = `params.${p.nombre}`;
  input.dataset.tipo = p.tipo;
  const hint = document.createElement("small");
  hint.textContent = p.minimo !== null ? `${p.minimo} – ${p.maximo}` : "";
  const error = document.createElement("p");
  error.className = "field-error";
  error.dataset.errorFor = input.name;
  wrap.append(label, input, hint, error);
  return wrap;
}

function mostrarParametros() {
  const strategy = strategies.find((s) => s.nombre === $("bt-strategy").value);
  const box = $("bt-params");
  box.replaceChildren(box.querySelector("legend") || document.createElement("legend"));
  box.querySelector("legend").textContent = "Parámetros";
  for (const p of strategy.parametros) box.append(campoParametro(p));
  $("bt-strategy").title = strategy.descripcion;
}

function cuerpo() {
  const data = new FormData(form);
  const body = { params: {} };
  for (const element of form.elements) {
    if (!element.name) continue;
    if (element.name.startsWith("params.")) {
      const name = element.name.slice(7);
      const tipo = element.dataset.tipo;
      body.params[name] = tipo === "bool" ? element.checked : tipo === "int" || tipo === "float" ? Number(element.value) : element.value;
    }
  }
  for (const key of ["symbol", "interval", "strategy", "start_date", "end_date"]) body[key] = data.get(key);
  for (const key of ["capital", "apalancamiento", "comision", "slippage"]) body[key] = Number(data.get(key));
  for (const key of ["stop_loss", "take_profit"]) {
    const text = String(data.get(key) || "").trim();
    if (text) body[key] = /^[0-9.]+$/.test(text) ? Number(text) : text;
  }
  // Only a number is sent as one: the API names the field of anything else instead of a NaN.
  const trailing = String(data.get("trailing") || "").trim();
  if (trailing) body.trailing = Number.isFinite(Number(trailing)) ? Number(trailing) : trailing;
  return body;
}

function limpiarErrores() {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("bt-error").textContent = "";
}

/** Errors next to the field they concern (the API's `detalle`), the rest under the button. */
function mostrarError(error) {
  let placed = false;
  for (const [field, message] of Object.entries(error.detalle || {})) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    const input = form.elements.namedItem(field);
    if (slot) {
      slot.textContent = message;
      placed = true;
    }
    input?.setAttribute?.("aria-invalid", "true");
  }
  if (!placed) $("bt-error").textContent = error.message;
}

async function ejecutar(event) {
  event.preventDefault();
  limpiarErrores();
  const body = cuerpo();
  const button = $("bt-run");
  button.disabled = true;
  const started = performance.now();
  const tick = setInterval(() => { $("bt-progreso").textContent = `Ejecutando… ${((performance.now() - started) / 1000).toFixed(0)} s (descarga las velas que falten)`; }, 250);
  $("bt-progreso").textContent = "Ejecutando…";
  guardarSesion({ ...cargarSesion({}), backtest: body });
  try {
    const run = await conToken(() => api("/backtest", { method: "POST", body }));
    history.replaceState(null, "", `/backtest-ui?run=${run.id}`);
    await mostrarResultado(run);
    await listarEjecuciones();
  } catch (error) {
    mostrarError(error);
  } finally {
    clearInterval(tick);
    $("bt-progreso").textContent = "";
    button.disabled = false;
  }
}

function graficos() {
  if (charts) return charts;
  const precio = crearGrafico($("bt-grafico"), { volumen: false });
  const equity = crearGrafico($("bt-equity"), { volumen: false });
  equity.chart.removeSeries(equity.velas);
  const curva = serieLinea(equity.chart, { color: "#2962ff", title: "capital" });
  const drawdown = serieArea(equity.chart, { lineColor: "#ef5350", topColor: "rgba(239,83,80,0.05)", bottomColor: "rgba(239,83,80,0.4)", invertFilledArea: true, title: "drawdown %" }, 1);
  equity.chart.panes()[1].setStretchFactor(0.4);
  charts = { precio, equity, curva, drawdown };
  window.kryptelion = { charts }; // for tests and the console
  return charts;
}

async function mostrarResultado(run) {
  $("bt-resultados").hidden = false;
  $("bt-titulo").textContent = `#${run.id} · ${run.strategy} ${JSON.stringify(run.params)} · ${run.symbol} ${run.interval} · ${run.rango.inicio_iso.slice(0, 10)} → ${run.rango.fin_iso.slice(0, 10)}`;
  const m = run.metricas;
  $("bt-metricas").tBodies[0].replaceChildren(...METRICS.map(([key, label, kind]) => {
    const row = document.createElement("tr");
    row.dataset.metrica = key;
    row.innerHTML = "<th></th><td></td>";
    row.cells[0].textContent = label;
    row.cells[1].textContent = formatear(m[key], kind);
    return row;
  }));
  const { precio, curva, drawdown, equity } = graficos();
  let peak = -Infinity;
  curva.setData(run.equity.map(([t, v]) => ({ time: aSegundos(t), value: v })));
  drawdown.setData(run.equity.map(([t, v]) => {
    peak = Math.max(peak, v);
    return { time: aSegundos(t), value: (v / peak - 1) * 100 };
  }));
  equity.chart.timeScale().fitContent();
  $("bt-trades").tBodies[0].replaceChildren(...run.trades.slice(0, 2000).map((t, i) => {
    const row = document.createElement("tr");
    for (const [value, cls] of [[i + 1], [t.side, t.side === "long" ? "compra" : "venta"], [fecha(t.entry_time)], [formatoPrecio(t.entry_price)],
      [t.exit_time ? fecha(t.exit_time) : "abierta"], [formatoPrecio(t.exit_price)], [t.pnl.toFixed(2), t.pnl >= 0 ? "compra" : "venta"],
      [`${(t.return * 100).toFixed(2)} %`], [t.exit_reason]]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      if (cls) cell.className = cls;
      row.append(cell);
    }
    return row;
  }));
  // The candles of the run (the last 10,000 when longer) with its trades on them.
  const serie = new SerieVelas(run.symbol, run.interval);
  const data = await api(`/velas?${consulta({ symbol: run.symbol, interval: run.interval, end: run.rango.fin + 1, limit: MAX_CANDLES })}`);
  serie.fusionar(data.velas.filter((v) => v.open_time >= run.rango.inicio));
  pintarVelas(precio, serie);
  const shown = serie.length ? serie.primera.open_time : 0;
  ponerMarcadores(precio, marcadoresDeTrades(run.trades.filter((t) => t.entry_time >= shown)));
  precio.chart.timeScale().fitContent();
}

async function listarEjecuciones() {
  const data = await api("/backtests?limit=20");
  $("bt-runs").replaceChildren(...data.backtests.map((run) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `#${run.id} ${run.strategy} ${run.symbol} ${run.interval} · ${formatear(run.metricas.total_return, "pct")}`;
    button.addEventListener("click", () => abrir(run.id));
    item.append(button);
    return item;
  }));
}

async function abrir(id) {
  limpiarErrores();
  try {
    const run = await api(`/backtest/${id}`);
    history.replaceState(null, "", `/backtest-ui?run=${id}`);
    await mostrarResultado(run);
  } catch (error) {
    mostrarError(error);
  }
}

async function iniciar() {
  strategies = (await api("/estrategias")).estrategias;
  for (const s of strategies) $("bt-strategy").append(new Option(s.nombre, s.nombre));
  const saved = cargarSesion({}).backtest;
  const today = new Date();
  $("bt-end").value = today.toISOString().slice(0, 10);
  $("bt-start").value = new Date(today - 90 * DAY_MS).toISOString().slice(0, 10);
  if (saved) {
    for (const key of ["symbol", "interval", "strategy", "start_date", "end_date", "capital", "apalancamiento", "comision", "slippage", "stop_loss", "take_profit", "trailing"]) {
      const input = form.elements.namedItem(key);
      if (input && saved[key] !== undefined && saved[key] !== null) input.value = saved[key];
    }
  } else if (config.symbols.includes("BTCUSDT")) {
    $("bt-symbol").value = "BTCUSDT";
  }
  // A link names the run to prefill (the optimisation page's rows): ?strategy=…&params.rapida=10
  const query = new URLSearchParams(window.location.search);
  const linked = query.has("strategy");
  if (linked) {
    for (const [key, value] of query) if (!key.startsWith("params.") && form.elements.namedItem(key)) form.elements.namedItem(key).value = value;
  }
  mostrarParametros();
  const params = linked
    ? [...query].filter(([key]) => key.startsWith("params.")).map(([key, value]) => [key.slice(7), value])
    : Object.entries(saved?.params || {});
  for (const [name, value] of params) {
    const input = form.elements.namedItem(`params.${name}`);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value === true || value === "true";
    else input.value = value;
  }
  $("bt-strategy").addEventListener("change", mostrarParametros);
  form.addEventListener("submit", ejecutar);
  await listarEjecuciones();
  if (form.dataset.run) await abrir(Number(form.dataset.run));
  else if (linked && query.get("ejecutar") === "1") form.requestSubmit();
}

iniciar().catch((error) => { $("bt-error").textContent = error.message; });
