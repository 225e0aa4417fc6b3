// The optimisation page: a search space built from /estrategias' parameter bounds, POST
// /optimizaciones, live progress polled from GET /optimizaciones/<id> (with Cancelar), and when
// it ends the overfitting verdict (DSR, PBO), the charts and the best combinations, each of
// which opens in the backtest page.
import { api, conToken } from "./api.js";
import {
  metrica, numero, ordenar, pintarHeatmap, pintarParalelo, pintarPareto, pintarValidacion, redimensionar,
} from "./optimizar_graficos.js";
import {
  COSTS, contarCombinaciones, cuerpo, fechaDia, limpiarErrores, metodoCambiado, mostrarError, mostrarParametros,
  ponerEstrategias, rellenar, validacionCambiada,
} from "./optimizar_formulario.js";
import { cargarSesion, configuracion, guardarSesion } from "./session_utils.js";

const $ = (id) => document.getElementById(id);
const form = $("op-form");
const config = configuracion();
const DAY_MS = 86_400_000;
const POLL_MS = 700;
const PAGE = 1000; // GET .../resultados' largest page
const MAX_ROWS = 50_000;
const TOP = 50;
const { pbo: PBO_LIMIT, dsr: DSR_LIMIT } = configuracion().umbrales; // backtesting.optimizador's
const RUNNING = new Set(["pendiente", "en_curso"]);
const ESTADOS = { pendiente: "pendiente", en_curso: "en curso", terminada: "terminada", cancelada: "cancelada", error: "error", interrumpida: "interrumpida" };

const METRICAS = [
  ["sharpe", "Sharpe"], ["sortino", "Sortino"], ["calmar", "Calmar"], ["total_return", "Retorno total"],
  ["annualized_return", "Retorno anualizado"], ["cagr", "CAGR"], ["max_drawdown", "Drawdown máximo"],
  ["profit_factor", "Profit factor"], ["win_rate", "Tasa de acierto"], ["expectancy", "Esperanza por operación"],
  ["sqn", "SQN"], ["kelly", "Kelly"], ["avg_trade", "Operación media"], ["trades", "Operaciones"],
  ["volatility", "Volatilidad"], ["exposure", "Exposición"], ["final_equity", "Capital final"],
];
const PCT = new Set(["total_return", "annualized_return", "cagr", "max_drawdown", "win_rate", "avg_trade", "volatility", "exposure", "buy_hold_return"]);
const COLUMNS = ["total_return", "max_drawdown", "trades", "win_rate"];

let following = null; // the job shown; polling for an older one stops when this changes
let current = null; // {job, rows, dims}

const formatear = (value, name) => {
  const x = numero(value);
  if (x === null) return "—";
  if (PCT.has(name)) return `${(x * 100).toFixed(2)} %`;
  if (Number.isInteger(x)) return String(x);
  return x.toLocaleString("es-ES", { maximumFractionDigits: 3 });
};
const esperar = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const texto = (value) => (typeof value === "number" ? String(Number(value.toPrecision(10))) : String(value));

async function enviar(event) {
  event.preventDefault();
  limpiarErrores();
  const body = cuerpo();
  const button = $("op-run");
  button.disabled = true;
  guardarSesion({ ...cargarSesion({}), optimizar: body });
  try {
    const job = await conToken(() => api("/optimizaciones", { method: "POST", body }));
    history.replaceState(null, "", `/optimizar?id=${job.id}`);
    listar();
    seguir(job.id);
  } catch (error) {
    mostrarError(error);
  } finally {
    button.disabled = false;
  }
}

// --- following a job ----------------------------------------------------------------------

function duracion(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

const parametrosTexto = (params) => Object.entries(params || {}).map(([k, v]) => `${k}=${texto(v)}`).join(" · ");

function mostrarProgreso(job) {
  const s = job.solicitud || {};
  const objetivos = typeof s.objetivo === "string" ? [s.objetivo] : s.objetivo || [];
  $("op-titulo").textContent = `#${job.id} · ${s.strategy} · ${s.symbol} ${s.interval} · ${fechaDia(s.start_date)} → ${fechaDia(s.end_date)} · ${s.metodo} · ${objetivos.join(", ")}`;
  $("op-estado").textContent = ESTADOS[job.estado] || job.estado;
  $("op-estado").dataset.estado = job.estado;
  const { hechas, total, eta_s: eta, fase } = job.progreso;
  $("op-barra").max = Math.max(total, 1);
  $("op-barra").value = job.estado === "terminada" ? Math.max(total, 1) : hechas;
  const parts = [total ? `${hechas.toLocaleString("es-ES")} / ${total.toLocaleString("es-ES")} combinaciones` : job.estado === "pendiente" ? "esperando turno" : "preparando las velas"];
  if (fase === "validacion" && RUNNING.has(job.estado)) parts.push("validando");
  if (eta !== null && eta !== undefined) parts.push(`quedan ~${duracion(eta)}`);
  $("op-cuenta").textContent = parts.join(" · ");
  const best = job.mejor;
  $("op-mejor").textContent = best ? `${RUNNING.has(job.estado) ? "Mejor hasta ahora" : "Mejor"}: ${parametrosTexto(best.params)} — ${best.objetivo} ${formatear(best.valor, best.objetivo)}` : "";
  const running = RUNNING.has(job.estado);
  $("op-cancelar").hidden = !running;
  $("op-cancelar").disabled = Boolean(job.cancelacion_pedida);
  $("op-cancelar").textContent = job.cancelacion_pedida ? "Cancelando…" : "Cancelar";
  $("op-fallo").textContent = job.estado === "error" ? `La optimización falló: ${job.error || "error desconocido"}`
    : job.estado === "interrumpida" ? "La optimización se interrumpió (su proceso terminó antes de acabar)." : "";
}

/** Poll the job until it ends (or another one is opened), then show its results. */
async function seguir(id) {
  following = id;
  current = null;
  $("op-resultados").hidden = false;
  $("op-final").hidden = true;
  $("op-fallo").textContent = "";
  for (;;) {
    let job;
    try {
      job = await api(`/optimizaciones/${id}`);
    } catch (error) {
      if (following === id) $("op-fallo").textContent = error.message;
      return;
    }
    if (following !== id) return;
    mostrarProgreso(job);
    if (!RUNNING.has(job.estado)) {
      await mostrarFinal(job);
      listar();
      return;
    }
    await esperar(POLL_MS);
    if (following !== id) return;
  }
}

async function cancelar() {
  const id = following;
  $("op-cancelar").disabled = true;
  try {
    await conToken(() => api(`/optimizaciones/${id}/cancelar`, { method: "POST" }));
  } catch (error) {
    if (error.status !== 409) $("op-fallo").textContent = error.message; // 409: it had just ended
  }
}

async function filas(id) {
  const rows = [];
  while (rows.length < MAX_ROWS) {
    const page = await api(`/optimizaciones/${id}/resultados?limit=${PAGE}&offset=${rows.length}`);
    rows.push(...page.resultados);
    if (!page.resultados.length || rows.length >= page.total) break;
  }
  return rows;
}

// --- the results --------------------------------------------------------------------------

function buscados(job, rows) {
  const spec = job.solicitud?.espacio || {};
  return Object.keys(spec).filter((name) => new Set(rows.map((r) => JSON.stringify(r.params[name]))).size > 1);
}

async function mostrarFinal(job) {
  const rows = await filas(job.id);
  if (following !== job.id) return;
  const dims = buscados(job, rows);
  const asked = job.solicitud?.objetivo ?? "sharpe";
  const objetivos = job.objetivo || (typeof asked === "string" ? [asked] : asked);
  current = { job, rows, dims, objetivos };
  $("op-final").hidden = false;
  mostrarVeredicto(job);
  $("op-heatmap-panel").hidden = !rows.length || !dims.length;
  $("op-ejes").hidden = dims.length <= 2;
  for (const [select, index] of [[$("op-eje-x"), 0], [$("op-eje-y"), 1]]) {
    select.replaceChildren(...dims.map((d) => new Option(d, d)));
    select.value = dims[index] ?? dims[0] ?? "";
  }
  if (rows.length && dims.length) dibujarHeatmap();
  $("op-paralelo-panel").hidden = dims.length <= 2 || !rows.length;
  if (!$("op-paralelo-panel").hidden) pintarParalelo($("op-paralelo"), rows, dims, objetivos, abrirFila);
  const pareto = (job.pareto || []).map((r) => ({ params: r.params, metricas: r.metricas, cumple: r.cumple, n: -1 }));
  $("op-pareto-panel").hidden = objetivos.length < 2 || !rows.length;
  if (!$("op-pareto-panel").hidden) {
    const index = new Map(rows.map((r) => [JSON.stringify(r.params), r]));
    const front = pareto.map((p) => index.get(JSON.stringify(p.params)) || p);
    pintarPareto($("op-pareto"), rows, front, objetivos, abrirFila);
  }
  const validation = job.validacion;
  $("op-validacion-panel").hidden = !validation;
  if (validation) {
    $("op-validacion-resumen").textContent = resumenValidacion(validation);
    pintarValidacion($("op-is-oos"), $("op-equity-oos"), validation);
  }
  tablaMejores(job, rows, dims, objetivos);
  window.kryptelion = { optimizacion: current }; // for tests and the console
}

function dibujarHeatmap() {
  const { rows, dims, objetivos } = current;
  const x = $("op-eje-x").value || dims[0];
  let y = dims.length > 1 ? $("op-eje-y").value : null;
  if (y === x) y = dims.find((d) => d !== x) ?? null;
  pintarHeatmap($("op-heatmap"), rows, x, y, objetivos[0], abrirFila);
}

function mostrarVeredicto(job) {
  const panel = $("op-veredicto");
  const measured = job.estado === "terminada";
  panel.hidden = !measured;
  if (!measured) return;
  const pbo = numero(job.pbo);
  const dsr = numero(job.dsr);
  const risky = (pbo !== null && pbo > PBO_LIMIT) || (dsr !== null && dsr < DSR_LIMIT);
  panel.classList.toggle("aviso", risky);
  panel.dataset.riesgo = String(risky);
  $("op-veredicto-titulo").textContent = risky ? "⚠ Cuidado: este resultado puede ser sobreajuste"
    : pbo === null && dsr === null ? "Sin medida de sobreajuste" : "El resultado resiste las pruebas de sobreajuste";
  const tried = job.probadas ?? 0;
  $("op-pbo").textContent = pbo === null ? "Probabilidad de sobreajuste (PBO): no se pudo calcular."
    : `Probabilidad de sobreajuste ${Math.round(pbo * 100)} %: ${pbo > PBO_LIMIT
      ? "en más de la mitad de las particiones, la mejor combinación dentro de la muestra queda por debajo de la mediana fuera de ella; lo más probable es que su ventaja sea suerte."
      : pbo > 0.25 ? "en bastantes particiones la mejor combinación dentro de la muestra pierde su ventaja fuera de ella; tómala con cautela."
        : "la mejor combinación dentro de la muestra suele seguir entre las buenas fuera de ella."}`;
  $("op-dsr").textContent = dsr === null ? "Sharpe deflactado (DSR): no se pudo calcular."
    : `Sharpe deflactado ${dsr.toFixed(2)}: ${dsr >= DSR_LIMIT
      ? `aun descontando las ${tried} combinaciones probadas, es muy probable que el Sharpe real de la mejor sea positivo.`
      : `con ${tried} combinaciones probadas, un Sharpe como el de la mejor puede salir por azar (hace falta ${DSR_LIMIT} o más).`}`;
  $("op-avisos").replaceChildren(...(job.avisos || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  const skipped = job.omitidas ? `, ${job.omitidas} omitidas (la estrategia las rechaza)` : "";
  $("op-resumen").textContent = `${tried} combinaciones probadas${skipped} · ${numero(job.segundos)?.toFixed(1) ?? "—"} s`;
}

function resumenValidacion(v) {
  const kind = v.tipo === "walk_forward" ? "Walk-forward" : "K-fold purgado";
  const parts = [`${kind}, ${v.ventanas.length} ventanas: ${v.objetivo} medio dentro de la muestra ${formatear(v.objetivo_is_medio, v.objetivo)}, fuera ${formatear(v.objetivo_oos_medio, v.objetivo)}`];
  if (v.rentabilidad_oos !== undefined) parts.push(`rentabilidad fuera de muestra ${formatear(v.rentabilidad_oos, "total_return")}`);
  return parts.join(" · ");
}

function tablaMejores(job, rows, dims, objetivos) {
  const table = $("op-top");
  const shownDims = dims.length ? dims : Object.keys(rows[0]?.params || {});
  const metrics = [...objetivos, ...COLUMNS.filter((c) => !objetivos.includes(c))];
  const head = document.createElement("tr");
  for (const text of ["#", ...shownDims, ...metrics, "cumple"]) {
    const th = document.createElement("th");
    th.textContent = text;
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const best = JSON.stringify(job.mejor?.params ?? null);
  table.tBodies[0].replaceChildren(...ordenar(rows, objetivos[0]).slice(0, TOP).map((row, i) => {
    const tr = document.createElement("tr");
    tr.dataset.n = row.n;
    tr.title = "Abrir esta combinación en el backtest";
    if (JSON.stringify(row.params) === best) tr.classList.add("mejor");
    const cells = [String(i + 1), ...shownDims.map((d) => texto(row.params[d])), ...metrics.map((m) => formatear(metrica(row, m), m)), row.cumple ? "sí" : "no"];
    for (const value of cells) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    tr.addEventListener("click", () => abrirFila(row.n));
    return tr;
  }));
}

/** The backtest page with the job's market, dates and costs and this row's parameters. */
function abrirFila(n) {
  const row = current.rows.find((r) => r.n === n);
  if (!row) return;
  const s = current.job.solicitud;
  const query = new URLSearchParams({ strategy: s.strategy, symbol: s.symbol, interval: s.interval });
  if (s.start_date) query.set("start_date", fechaDia(s.start_date));
  if (s.end_date) query.set("end_date", fechaDia(s.end_date));
  for (const key of COSTS) if (s[key] !== null && s[key] !== undefined) query.set(key, s[key]);
  for (const [name, value] of Object.entries(row.params)) query.set(`params.${name}`, value);
  query.set("ejecutar", "1");
  window.location.assign(`/backtest-ui?${query}`);
}

// --- past optimisations -------------------------------------------------------------------

async function listar() {
  const data = await api("/optimizaciones?limit=20");
  $("op-lista").replaceChildren(...data.optimizaciones.map((job) => {
    const s = job.solicitud || {};
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = job.id;
    const best = job.mejor ? ` · ${job.mejor.objetivo} ${formatear(job.mejor.valor, job.mejor.objetivo)}` : "";
    button.textContent = `#${job.id} ${s.strategy} ${s.symbol} ${s.interval} · ${s.metodo} · ${ESTADOS[job.estado] || job.estado}${best}`;
    button.addEventListener("click", () => abrir(job.id));
    item.append(button);
    return item;
  }));
}

async function abrir(id) {
  limpiarErrores();
  history.replaceState(null, "", `/optimizar?id=${id}`);
  try {
    const job = await api(`/optimizaciones/${id}`);
    if (job.solicitud) rellenar(job.solicitud);
  } catch (error) {
    $("op-error").textContent = error.message;
    return;
  }
  await seguir(id);
}

async function iniciar() {
  const strategies = (await api("/estrategias")).estrategias;
  ponerEstrategias(strategies);
  for (const s of strategies) $("op-strategy").append(new Option(s.nombre, s.nombre));
  for (const [index, select] of document.querySelectorAll(".op-objetivo").entries()) {
    if (index > 0) select.append(new Option("—", ""));
    for (const [key, label] of METRICAS) select.append(new Option(`${label} (${key})`, key));
  }
  const today = new Date();
  $("op-end").value = today.toISOString().slice(0, 10);
  $("op-start").value = new Date(today - 90 * DAY_MS).toISOString().slice(0, 10);
  if (config.symbols.includes("BTCUSDT")) $("op-symbol").value = "BTCUSDT";
  const saved = cargarSesion({}).optimizar;
  if (saved && strategies.some((s) => s.nombre === saved.strategy)) rellenar(saved);
  else mostrarParametros();
  $("op-strategy").addEventListener("change", mostrarParametros);
  $("op-metodo").addEventListener("change", metodoCambiado);
  $("op-validacion").addEventListener("change", validacionCambiada);
  $("op-params").addEventListener("input", contarCombinaciones);
  $("op-intentos").addEventListener("input", contarCombinaciones);
  $("op-eje-x").addEventListener("change", dibujarHeatmap);
  $("op-eje-y").addEventListener("change", dibujarHeatmap);
  $("op-cancelar").addEventListener("click", cancelar);
  window.addEventListener("resize", () => redimensionar(document.querySelectorAll(".op-chart")));
  form.addEventListener("submit", enviar);
  validacionCambiada();
  await listar();
  if (form.dataset.job) await abrir(Number(form.dataset.job));
}

iniciar().catch((error) => { $("op-error").textContent = error.message; });
