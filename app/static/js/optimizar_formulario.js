// The optimisation page's form: one row per strategy parameter (fixed, a range, bounds or a list
// of values), the request body built from it, the form refilled from a stored request, and the
// API's errors shown next to the field they name.
const $ = (id) => document.getElementById(id);
const form = $("op-form");
export const COSTS = ["capital", "apalancamiento", "comision", "slippage", "stop_loss", "take_profit", "trailing"];
let strategies = [];

/** The strategies of GET /estrategias, whose parameters the form offers. */
export function ponerEstrategias(list) {
  strategies = list;
}

/** A request's date as the date input wants it (YYYY-MM-DD). */
export function fechaDia(value) {
  if (typeof value === "number") return new Date(value).toISOString().slice(0, 10);
  return String(value).slice(0, 10);
}

// --- the search space ---------------------------------------------------------------------

function input(id, attrs = {}) {
  const element = document.createElement("input");
  element.id = id;
  Object.assign(element, attrs);
  return element;
}

function etiquetado(text, element) {
  const label = document.createElement("label");
  label.className = "inline";
  label.append(text, element);
  return label;
}

function rangoPorDefecto(p) {
  const step = p.tipo === "int" ? 1 : 0.0001;
  const low = Math.max(p.minimo ?? 0, p.tipo === "int" ? Math.round(p.defecto / 2) : p.defecto / 2);
  const high = Math.min(p.maximo ?? p.defecto * 2, p.defecto * 2);
  const raw = (high - low) / 4;
  const paso = p.tipo === "int" ? Math.max(1, Math.round(raw)) : Math.max(step, Number(raw.toPrecision(2)));
  return { desde: low, hasta: high, paso };
}

/** One parameter's row: fixed, a range (desde/hasta/paso), bounds (min/max/log) or a list. */
function campoParametro(p, searched) {
  const wrap = document.createElement("div");
  wrap.className = "op-param";
  wrap.dataset.param = p.nombre;
  wrap.dataset.tipo = p.tipo;
  const id = (part) => `op-p-${p.nombre}-${part}`;
  const numeric = p.tipo === "int" || p.tipo === "float";
  const label = document.createElement("label");
  label.htmlFor = id("modo");
  label.textContent = p.nombre;
  label.title = p.descripcion;
  const mode = document.createElement("select");
  mode.id = id("modo");
  const modes = numeric ? [["fijo", "fijo"], ["rango", "rango"], ["limites", "límites"], ["valores", "valores"]] : [["fijo", "fijo"], ["valores", "valores"]];
  for (const [value, text] of modes) mode.append(new Option(text, value));
  const head = document.createElement("div");
  head.className = "op-param-head";
  const hint = document.createElement("small");
  hint.textContent = p.minimo !== null ? `${p.minimo} – ${p.maximo}` : "";
  head.append(label, mode, hint);
  const step = p.tipo === "int" ? 1 : "any";
  const bounds = { min: p.minimo ?? "", max: p.maximo ?? "", step, type: "number" };
  const part = (name, ...children) => {
    const span = document.createElement("div");
    span.className = "op-modo";
    span.dataset.modo = name;
    span.append(...children);
    return span;
  };
  let fixed;
  if (p.opciones) {
    fixed = document.createElement("select");
    for (const option of p.opciones) fixed.append(new Option(option, option, false, option === p.defecto));
  } else if (p.tipo === "bool") {
    fixed = input(id("valor"), { type: "checkbox", checked: Boolean(p.defecto) });
  } else {
    fixed = input(id("valor"), { ...bounds, value: p.defecto });
  }
  fixed.id = id("valor");
  const range = rangoPorDefecto(p);
  const parts = [part("fijo", fixed)];
  if (numeric) {
    parts.push(
      part("rango", etiquetado("desde", input(id("desde"), { ...bounds, value: range.desde })),
        etiquetado("hasta", input(id("hasta"), { ...bounds, value: range.hasta })),
        etiquetado("paso", input(id("paso"), { type: "number", min: 0, step, value: range.paso }))),
      part("limites", etiquetado("min", input(id("min"), { ...bounds, value: range.desde })),
        etiquetado("max", input(id("max"), { ...bounds, value: range.hasta })),
        etiquetado("log", input(id("log"), { type: "checkbox" }))),
      part("valores", input(id("valores"), { placeholder: "5, 10, 20", value: `${range.desde}, ${range.hasta}` })),
    );
  } else {
    const options = p.opciones || [true, false];
    parts.push(part("valores", ...options.map((option, i) => etiquetado(String(option), input(id(`opcion-${i}`), { type: "checkbox", checked: true, value: String(option) })))));
  }
  const error = document.createElement("p");
  error.className = "field-error";
  error.dataset.errorFor = `espacio.${p.nombre}`;
  wrap.append(head, ...parts, error);
  mode.value = searched ? (numeric ? "rango" : "valores") : "fijo";
  mode.addEventListener("change", () => mostrarModo(wrap));
  mostrarModo(wrap);
  return wrap;
}

function mostrarModo(wrap) {
  const mode = wrap.querySelector(".op-param-head select").value;
  for (const part of wrap.querySelectorAll(".op-modo")) part.hidden = part.dataset.modo !== mode;
  contarCombinaciones();
}

export function mostrarParametros() {
  const strategy = strategies.find((s) => s.nombre === $("op-strategy").value);
  const box = $("op-params");
  const legend = document.createElement("legend");
  legend.textContent = "Espacio de búsqueda";
  let searched = 0;
  box.replaceChildren(legend, ...strategy.parametros.map((p) => {
    const numeric = p.tipo === "int" || p.tipo === "float";
    return campoParametro(p, numeric && p.minimo !== null && searched++ < 2);
  }));
  $("op-strategy").title = strategy.descripcion;
  metodoCambiado();
}

/** A number when the text is one, else the text itself (the API then names the field). */
const valorNumerico = (element) => {
  const text = element.value.trim();
  return text !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
};

function valorFijo(wrap, element) {
  if (element.type === "checkbox") return element.checked;
  return wrap.dataset.tipo === "int" || wrap.dataset.tipo === "float" ? valorNumerico(element) : element.value;
}

function especificacion(wrap) {
  const name = wrap.dataset.param;
  const get = (part) => $(`op-p-${name}-${part}`);
  switch (wrap.querySelector(".op-param-head select").value) {
    case "rango": return { desde: valorNumerico(get("desde")), hasta: valorNumerico(get("hasta")), paso: valorNumerico(get("paso")) };
    case "limites": return { min: valorNumerico(get("min")), max: valorNumerico(get("max")), log: get("log").checked };
    case "valores": {
      if (wrap.dataset.tipo === "int" || wrap.dataset.tipo === "float") {
        return get("valores").value.split(/[,;\s]+/).filter(Boolean).map((t) => (Number.isFinite(Number(t)) ? Number(t) : t));
      }
      const boxes = [...wrap.querySelectorAll(".op-modo[data-modo=valores] input:checked")];
      return boxes.map((box) => (wrap.dataset.tipo === "bool" ? box.value === "true" : box.value));
    }
    default: return valorFijo(wrap, get("valor"));
  }
}

function espacio() {
  return Object.fromEntries([...$("op-params").querySelectorAll(".op-param")].map((w) => [w.dataset.param, especificacion(w)]));
}

export function contarCombinaciones() {
  if (!$("op-params").querySelector(".op-param")) return;
  const metodo = $("op-metodo").value;
  let total = 1;
  for (const spec of Object.values(espacio())) {
    if (Array.isArray(spec)) total *= spec.length;
    else if (spec && typeof spec === "object" && "paso" in spec) {
      const { desde, hasta, paso } = spec;
      total *= Number(paso) > 0 && Number(hasta) >= Number(desde) ? Math.floor((hasta - desde) / paso + 1e-9) + 1 : NaN;
    } else if (spec && typeof spec === "object") total = Infinity;
  }
  const trials = Number($("op-intentos").value) || 100;
  $("op-combinaciones").textContent = metodo === "grid"
    ? (Number.isFinite(total) ? `${total.toLocaleString("es-ES")} combinaciones` : "")
    : `${Math.min(trials, total).toLocaleString("es-ES")} intentos de ${Number.isFinite(total) ? total.toLocaleString("es-ES") : "un espacio continuo"}`;
}

export function metodoCambiado() {
  const grid = $("op-metodo").value === "grid";
  $("op-intentos").disabled = grid;
  for (const select of $("op-params").querySelectorAll(".op-param-head select")) {
    const bounds = [...select.options].find((o) => o.value === "limites");
    if (!bounds) continue;
    bounds.disabled = grid; // grid takes ranges or lists only
    if (grid && select.value === "limites") {
      select.value = "rango";
      mostrarModo(select.closest(".op-param"));
    }
  }
  contarCombinaciones();
}

export function validacionCambiada() {
  $("op-opciones-wf").hidden = $("op-validacion").value !== "walk_forward";
  $("op-opciones-kf").hidden = $("op-validacion").value !== "kfold_purgado";
}

// --- the request ----------------------------------------------------------------------------

export function cuerpo() {
  const data = new FormData(form);
  const objetivos = [...document.querySelectorAll(".op-objetivo")].map((s) => s.value).filter(Boolean);
  const body = {
    symbol: data.get("symbol"), interval: data.get("interval"), strategy: data.get("strategy"),
    start_date: data.get("start_date"), end_date: data.get("end_date"), espacio: espacio(),
    metodo: data.get("metodo"), objetivo: objetivos.length === 1 ? objetivos[0] : [...new Set(objetivos)],
    validacion: data.get("validacion") || null, opciones_validacion: {}, restricciones: {},
    semilla: valorNumerico($("op-semilla")) || 0,
  };
  if (body.metodo !== "grid" && $("op-intentos").value.trim()) body.intentos = valorNumerico($("op-intentos"));
  const options = body.validacion === "walk_forward" ? [["ventanas", "op-ventanas"], ["in_sample", "op-in-sample"]]
    : body.validacion === "kfold_purgado" ? [["folds", "op-folds"], ["embargo", "op-embargo"]] : [];
  for (const [key, id] of options) if ($(id).value.trim()) body.opciones_validacion[key] = valorNumerico($(id));
  if ($("op-min-trades").value.trim()) body.restricciones.trades = valorNumerico($("op-min-trades"));
  const dd = valorNumerico($("op-max-dd"));
  if (dd !== "") body.restricciones.max_drawdown = typeof dd === "number" ? -dd / 100 : dd;
  for (const key of ["capital", "apalancamiento", "comision", "slippage"]) body[key] = valorNumerico(form.elements.namedItem(key));
  for (const key of ["stop_loss", "take_profit", "trailing"]) {
    const value = valorNumerico(form.elements.namedItem(key));
    if (value !== "") body[key] = value;
  }
  return body;
}

/** The form as `body` was sent (a reopened job, or the last one of this browser). */
export function rellenar(body) {
  for (const key of ["symbol", "interval", "strategy", "metodo", ...COSTS]) {
    const element = form.elements.namedItem(key);
    if (element && body[key] !== undefined && body[key] !== null) element.value = body[key];
  }
  for (const key of ["start_date", "end_date"]) if (body[key]) form.elements.namedItem(key).value = fechaDia(body[key]);
  $("op-validacion").value = body.validacion || "";
  $("op-semilla").value = body.semilla ?? 0;
  $("op-intentos").value = body.intentos ?? "";
  const objetivos = typeof body.objetivo === "string" ? [body.objetivo] : body.objetivo || ["sharpe"];
  document.querySelectorAll(".op-objetivo").forEach((select, i) => { select.value = objetivos[i] || ""; });
  const limits = body.restricciones || {};
  $("op-min-trades").value = limits.trades ?? "";
  $("op-max-dd").value = limits.max_drawdown !== undefined ? -limits.max_drawdown * 100 : "";
  const options = body.opciones_validacion || {};
  for (const [key, id] of [["ventanas", "op-ventanas"], ["in_sample", "op-in-sample"], ["folds", "op-folds"], ["embargo", "op-embargo"]]) {
    if (options[key] !== undefined && options[key] !== null) $(id).value = options[key];
  }
  mostrarParametros();
  for (const [name, spec] of Object.entries(body.espacio || {})) rellenarParametro(name, spec);
  metodoCambiado();
  validacionCambiada();
}

function rellenarParametro(name, spec) {
  const wrap = $("op-params").querySelector(`.op-param[data-param="${CSS.escape(name)}"]`);
  if (!wrap) return;
  const get = (part) => $(`op-p-${name}-${part}`);
  const mode = wrap.querySelector(".op-param-head select");
  if (Array.isArray(spec)) {
    mode.value = "valores";
    if (get("valores")) get("valores").value = spec.join(", ");
    for (const box of wrap.querySelectorAll(".op-modo[data-modo=valores] input[type=checkbox]")) box.checked = spec.map(String).includes(box.value);
  } else if (spec && typeof spec === "object" && "paso" in spec) {
    mode.value = "rango";
    for (const key of ["desde", "hasta", "paso"]) get(key).value = spec[key];
  } else if (spec && typeof spec === "object") {
    mode.value = "limites";
    get("min").value = spec.min;
    get("max").value = spec.max;
    get("log").checked = Boolean(spec.log);
  } else {
    mode.value = "fijo";
    const fixed = get("valor");
    if (fixed.type === "checkbox") fixed.checked = Boolean(spec);
    else fixed.value = spec;
  }
  mostrarModo(wrap);
}

export function limpiarErrores() {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

/** Each error next to its field, or the nearest enclosing one (espacio.rapida.desde → espacio.rapida). */
export function mostrarError(error) {
  let placed = false;
  for (const [field, message] of Object.entries(error.detalle || {})) {
    const parts = field.split(".");
    for (let k = parts.length; k > 0; k--) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(parts.slice(0, k).join("."))}"]`);
      if (slot) {
        slot.textContent = message;
        placed = true;
        break;
      }
    }
    const target = parts[0] === "espacio"
      ? $("op-params").querySelector(`.op-param[data-param="${CSS.escape(parts[1] || "")}"]`)
      : form.elements.namedItem(parts[0]);
    target?.setAttribute?.("aria-invalid", "true");
  }
  if (!placed) $("op-error").textContent = error.message;
}
