// The live dashboard: history from /velas (older pages as the user scrolls back), live candles
// and signals from the bridge, a strategy's signals over the history, indicator overlays,
// crossovers, orders, the bots panel and system metrics.
import { api, conToken, consulta } from "./api.js";
import { PanelBots } from "./bots.js";
import {
  cargarCruces, cargarSenales, listarEstrategias, marcadorDeCruce, marcadorDeSenal, marcadorDeSenalHistorica,
  ordenarMarcadores,
} from "./estrategias.js";
import { actualizarVela, crearGrafico, pintarVelas, ponerMarcadores, Superposiciones } from "./grafico_utils.js";
import { INDICADORES } from "./indicadores.js";
import { SerieVelas } from "./procesador_kline.js";
import { cargarSesion, configuracion, guardarSesion } from "./session_utils.js";
import { basePuente, ConexionPuente } from "./ws-handler.js";

const PAGE = 1000; // candles per /velas request for older history
const SIGNAL_CANDLES = 5000; // the most candles GET /senales evaluates
const LISTED = 50; // items kept in the Señales list
// ?velas=N: how many candles the first load brings (up to the 10,000 /velas serves at once).
const FIRST_LOAD = Math.min(10_000, Math.max(50, Number(new URLSearchParams(location.search).get("velas")) || PAGE));
const METRICS_EVERY_MS = 10_000;
const config = configuracion();
const $ = (id) => document.getElementById(id);

const defaults = {
  symbol: config.symbols.includes("BTCUSDT") ? "BTCUSDT" : config.symbols[0],
  interval: "1m",
  estrategia: "sma_cruce", // whose signals over the history show ("" for none)
  bot: null, // the bot selected in the bots panel
  overlays: Object.fromEntries(Object.entries(INDICADORES).map(([name, spec]) => [name, {
    on: name === "sma",
    params: Object.fromEntries(spec.params.map((p) => [p.name, p.default])),
  }])),
};
const session = cargarSesion(defaults);
if (!config.symbols.includes(session.symbol)) session.symbol = defaults.symbol;
if (!config.intervals.includes(session.interval)) session.interval = defaults.interval;

const grafico = crearGrafico($("grafico"));
const overlays = new Superposiciones(grafico);
// markers: crossovers and live signals; senales: the selected strategy's over the history.
const state = { serie: new SerieVelas(session.symbol, session.interval), markers: [], senales: [], loadingOlder: false, exhausted: false, generation: 0 };
const stats = { updates: 0, updateMs: [], estados: [] }; // live update costs (bench_ui), state changes
const bridge = new ConexionPuente(basePuente(location, config.bridge_port), { onMensaje, onEstado });
const bots = new PanelBots({
  grafico,
  flujo: () => ({ symbol: state.serie.symbol, interval: state.serie.interval }),
  onMarcadores: pintarMarcadores,
  onSeleccion: (id) => {
    session.bot = id;
    guardarSesion(session);
  },
  onVerMercado: (symbol, interval) => elegirMercado(symbol, interval),
});
const BOT_MESSAGES = new Set(["bot", "posicion", "orden"]);
window.kryptelion = { grafico, state, bridge, overlays, stats, bots }; // for tests, benchmarks and the console

/** Every marker source on the chart at once, as the chart keeps one sorted list. */
function pintarMarcadores() {
  ponerMarcadores(grafico, ordenarMarcadores([...state.markers, ...state.senales, ...bots.marcadores()]));
}

function onEstado(estado, detalle) {
  const badge = $("conexion");
  if (stats.estados.at(-1) !== estado) stats.estados.push(estado);
  badge.dataset.estado = estado === "error" ? "desconectado" : estado;
  badge.textContent = { conectado: "en vivo", conectando: "conectando…", reconectando: "reconectando…", desconectado: "sin datos del exchange" }[estado] || detalle;
  badge.title = detalle || "";
}

function onMensaje(message) {
  if (BOT_MESSAGES.has(message.tipo)) {
    bots.mensaje(message); // the bot host's messages reach every client, whatever its stream
    return;
  }
  const serie = state.serie;
  if (message.symbol && (message.symbol !== serie.symbol || message.interval !== serie.interval)) return;
  if (message.tipo === "snapshot") {
    serie.fusionar(message.velas);
    pintarVelas(grafico, serie);
    overlays.repintar(serie);
    onEstado(message.estado === "conectado" ? "conectado" : "desconectado", "");
    bots.refrescar(); // what the bots did while this connection was away
  } else if (message.tipo === "vela") {
    const started = performance.now();
    const result = serie.aplicar(message.vela);
    if (result === "ignorada") return;
    actualizarVela(grafico, serie.ultima);
    overlays.actualizarUltima(serie);
    leyenda(serie.ultima);
    stats.updates += 1;
    stats.updateMs.push(performance.now() - started);
    if (stats.updateMs.length > 1000) stats.updateMs.shift();
  } else if (message.tipo === "senal") {
    state.markers.push(marcadorDeSenal(message));
    pintarMarcadores();
    anotarSenal(`${message.estrategia}: ${message.posicion > 0 ? "largo" : message.posicion < 0 ? "corto" : "plano"} a ${message.precio}`, message.posicion >= 0 ? "alcista" : "bajista", message.open_time);
  } else if (message.tipo === "estado") {
    onEstado(message.estado === "conectado" ? "conectado" : "desconectado", message.detalle);
  }
}

function leyenda(vela) {
  if (!vela) return;
  const cls = vela.close >= vela.open ? "up" : "down";
  $("leyenda").innerHTML = `${state.serie.symbol} · ${state.serie.interval} <span class="${cls}">O ${vela.open} H ${vela.high} L ${vela.low} C ${vela.close}</span> V ${vela.volume.toFixed(3)}`;
}

/** A list item in time order, newest first; `origen` tags the items one source replaces. */
function anotarSenal(text, kind, openTime, origen = "") {
  const item = document.createElement("li");
  item.className = kind;
  item.dataset.time = openTime;
  if (origen) item.dataset.origen = origen;
  item.textContent = `${new Date(openTime).toISOString().slice(5, 16).replace("T", " ")} ${text}`;
  const list = $("senales");
  const after = [...list.children].find((other) => Number(other.dataset.time) <= openTime);
  list.insertBefore(item, after ?? null);
  while (list.children.length > LISTED) list.lastChild.remove();
}

const LADO = { 1: "largo", 0: "plano", "-1": "corto" };

let signalsAsked = 0; // the latest /senales request; an older answer is dropped

/** The selected strategy's signals over the loaded history: markers and list items. */
async function cargarSenalesHistoricas() {
  const asked = ++signalsAsked;
  const serie = state.serie;
  const { symbol, interval } = serie;
  const estrategia = session.estrategia;
  let senales = [];
  if (estrategia && serie.length) {
    try {
      senales = await cargarSenales(symbol, interval, estrategia, Math.min(SIGNAL_CANDLES, serie.length));
    } catch (error) {
      $("leyenda").textContent = `señales de ${estrategia}: ${error.message}`;
    }
  }
  if (asked !== signalsAsked || serie !== state.serie) return;
  state.senales = senales.map((s) => marcadorDeSenalHistorica(s, estrategia));
  for (const item of $("senales").querySelectorAll("li[data-origen=historial]")) item.remove();
  for (const s of senales.slice(-LISTED)) anotarSenal(`señal ${LADO[s.posicion]} a ${s.precio} (${s.motivo})`, LADO[s.posicion], s.open_time, "historial");
  pintarMarcadores();
}

/** Load (symbol, interval) from scratch: history, crossovers, then the live stream. */
async function cargar() {
  const generation = ++state.generation;
  const { symbol, interval } = session;
  state.serie = new SerieVelas(symbol, interval);
  state.markers = [];
  state.senales = [];
  state.exhausted = false;
  $("senales").replaceChildren();
  $("leyenda").textContent = `${symbol} · ${interval} — cargando…`;
  bridge.seguir(symbol, interval);
  try {
    const data = await api(`/velas?${consulta({ symbol, interval, limit: FIRST_LOAD })}`);
    if (generation !== state.generation) return;
    state.serie.fusionar(data.velas);
    pintarVelas(grafico, state.serie);
    for (const [name, ajuste] of Object.entries(session.overlays)) overlays.aplicar(name, ajuste, state.serie);
    grafico.chart.timeScale().scrollToRealTime();
    leyenda(state.serie.ultima);
    requestAnimationFrame(() => performance.mark("kryptelion:velas-pintadas"));
    const cruces = await cargarCruces(symbol, interval, state.serie.primera?.open_time);
    if (generation !== state.generation) return;
    state.markers.push(...cruces.map(marcadorDeCruce));
    pintarMarcadores();
    for (const c of cruces.slice(-20)) anotarSenal(`cruce ${c.tipo} a ${c.precio}`, c.tipo, c.open_time);
    await cargarSenalesHistoricas();
  } catch (error) {
    $("leyenda").textContent = `${symbol} · ${interval}: ${error.message}`;
  }
  if (generation !== state.generation) return;
  bots.redibujar(); // the selected bot's markers and lines show on its own market only
  await cargarOrdenes();
}

/** Older history when the user scrolls near the left edge. */
async function cargarAnteriores() {
  const serie = state.serie;
  if (state.loadingOlder || state.exhausted || !serie.length) return;
  state.loadingOlder = true;
  const generation = state.generation;
  try {
    const data = await api(`/velas?${consulta({ symbol: serie.symbol, interval: serie.interval, end: serie.primera.open_time, limit: PAGE })}`);
    if (generation !== state.generation) return;
    const older = data.velas.filter((v) => v.open_time < serie.primera.open_time);
    if (!older.length) {
      state.exhausted = true;
      return;
    }
    const range = grafico.chart.timeScale().getVisibleLogicalRange();
    serie.fusionar(older);
    pintarVelas(grafico, serie);
    overlays.repintar(serie);
    if (range) grafico.chart.timeScale().setVisibleLogicalRange({ from: range.from + older.length, to: range.to + older.length });
    cargarSenalesHistoricas(); // the signals cover the older candles too (up to SIGNAL_CANDLES)
  } catch (error) {
    $("leyenda").textContent = `historial anterior no disponible: ${error.message}`;
  } finally {
    state.loadingOlder = false;
  }
}

grafico.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
  if (range && range.from < 50) cargarAnteriores();
});

function controlesIndicadores() {
  const box = $("indicadores");
  for (const [name, spec] of Object.entries(INDICADORES)) {
    const ajuste = session.overlays[name];
    const row = document.createElement("div");
    row.className = "indicator";
    const toggle = document.createElement("input");
    toggle.type = "checkbox";
    toggle.id = `ind-${name}`;
    toggle.checked = ajuste.on;
    const label = document.createElement("label");
    label.htmlFor = toggle.id;
    label.textContent = spec.label;
    const params = document.createElement("div");
    params.className = "params";
    for (const p of spec.params) {
      const input = document.createElement("input");
      Object.assign(input, { type: "number", min: p.min, max: p.max, step: p.step, value: ajuste.params[p.name] ?? p.default, id: `ind-${name}-${p.name}` });
      input.setAttribute("aria-label", `${spec.label} ${p.name}`);
      input.addEventListener("change", () => {
        const value = Number(input.value);
        if (!(value >= p.min && value <= p.max)) {
          input.setAttribute("aria-invalid", "true");
          return;
        }
        input.removeAttribute("aria-invalid");
        ajuste.params[p.name] = value;
        cambiarIndicador(name);
      });
      params.append(input);
    }
    toggle.addEventListener("change", () => {
      ajuste.on = toggle.checked;
      cambiarIndicador(name);
    });
    row.append(toggle, label, params);
    box.append(row);
  }
}

function cambiarIndicador(name) {
  guardarSesion(session);
  try {
    overlays.aplicar(name, session.overlays[name], state.serie);
  } catch (error) {
    $("leyenda").textContent = `${INDICADORES[name].label}: ${error.message}`;
  }
}

// Orders ---------------------------------------------------------------------------------------
async function cargarOrdenes() {
  const estado = $("orden-filtro").value;
  try {
    const data = await api(`/ordenes?${consulta({ symbol: session.symbol, estado, limit: 50 })}`);
    $("ordenes").replaceChildren(...data.ordenes.map(filaOrden));
  } catch (error) {
    $("orden-error").textContent = error.message;
  }
}

const FINAL = new Set(["ejecutada", "cancelada", "rechazada", "expirada"]);

function filaOrden(orden) {
  const row = document.createElement("tr");
  row.dataset.id = orden.id;
  for (const [value, cls] of [[orden.id], [orden.lado, orden.lado], [orden.cantidad], [orden.precio ?? "mercado"], [orden.estado]]) {
    const cell = document.createElement("td");
    cell.textContent = value;
    if (cls) cell.className = cls;
    row.append(cell);
  }
  const actions = document.createElement("td");
  if (!FINAL.has(orden.estado)) {
    const cancel = document.createElement("button");
    cancel.className = "secondary";
    cancel.textContent = "Cancelar";
    cancel.setAttribute("aria-label", `cancelar orden ${orden.id}`);
    cancel.addEventListener("click", () => accionOrden(async () => {
      await api(`/ordenes/${orden.id}`, { method: "DELETE" });
      await cargarOrdenes();
    }));
    actions.append(cancel);
  }
  row.append(actions);
  return row;
}

/** An order action; its error (with the fields the API names) shows under the order form. */
async function accionOrden(action) {
  $("orden-error").textContent = "";
  try {
    await conToken(action);
  } catch (error) {
    const fields = Object.entries(error.detalle || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    $("orden-error").textContent = fields ? `${error.message} (${fields})` : error.message;
  }
}

$("orden-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { symbol: session.symbol, lado: form.get("lado"), cantidad: Number(form.get("cantidad")), precio: Number(form.get("precio")) };
  accionOrden(async () => {
    await api("/ordenes", { method: "POST", body });
    event.target.reset();
    await cargarOrdenes();
  });
});
$("orden-filtro").addEventListener("change", cargarOrdenes);

// Metrics --------------------------------------------------------------------------------------
const MB = 1024 * 1024;
async function cargarMetricas() {
  try {
    const m = await api("/metrics");
    const salud = m.bridge?.salud || {};
    const rows = [
      ["mercado", m.mercado], ["CPU proceso", `${m.proceso.cpu_percent}%`], ["RAM proceso", `${(m.proceso.rss_bytes / MB).toFixed(0)} MB`],
      ["CPU sistema", `${m.sistema.cpu_percent}%`], ["base de datos", `${m.base_de_datos.motor}, ${(m.base_de_datos.tamano_bytes / MB).toFixed(1)} MB`],
      ["streams guardados", m.base_de_datos.velas.length], ["bridge", m.bridge?.estado ?? "—"],
      ["clientes bridge", salud.clientes ?? "—"], ["mensajes/s", salud.mensajes_por_s ?? "—"],
    ];
    $("metricas").replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      return [dt, dd];
    }));
  } catch (error) {
    $("metricas").textContent = error.message;
  }
}

// Pickers --------------------------------------------------------------------------------------
$("symbol").value = session.symbol;
$("interval").value = session.interval;
for (const id of ["symbol", "interval"]) {
  $(id).addEventListener("change", () => {
    session[id] = $(id).value;
    guardarSesion(session);
    cargar();
  });
}
$("selector").addEventListener("submit", (event) => event.preventDefault());

/** Show (symbol, interval) on the chart, as if picked (a bot's market). */
function elegirMercado(symbol, interval) {
  if (!config.symbols.includes(symbol) || !config.intervals.includes(interval)) return;
  Object.assign(session, { symbol, interval });
  $("symbol").value = symbol;
  $("interval").value = interval;
  guardarSesion(session);
  cargar();
}

async function controlesEstrategia() {
  const select = $("senal-estrategia");
  try {
    for (const { nombre, descripcion } of await listarEstrategias()) {
      select.append(Object.assign(document.createElement("option"), { value: nombre, textContent: nombre, title: descripcion }));
    }
  } catch (error) {
    $("leyenda").textContent = `estrategias: ${error.message}`;
  }
  select.value = [...select.options].some((o) => o.value === session.estrategia) ? session.estrategia : "";
  select.addEventListener("change", () => {
    session.estrategia = select.value;
    guardarSesion(session);
    cargarSenalesHistoricas();
  });
}

controlesIndicadores();
controlesEstrategia();
cargar();
bots.cargar(session.bot);
cargarMetricas();
setInterval(cargarMetricas, METRICS_EVERY_MS);
