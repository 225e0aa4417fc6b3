// The Bots panel: the bots (GET /bots) and, for the one selected, its state, position, PnL, risk
// limits with their use, its orders, its trades as chart markers and the open position's stop
// and target as price lines; its commands and the kill switch; live updates from the bridge.
import { api, conToken } from "./api.js";
import { marcadoresDeTrades } from "./estrategias.js";

const LWC = globalThis.LightweightCharts;
const ORDERS = 20; // latest orders shown
const REFRESH_MS = 3_000; // per-candle messages re-fetch the detail at most this often
const $ = (id) => document.getElementById(id);
// Each limit the host measures, the usage key it stores it under, and how both read.
const USAGE = [
  ["max_perdida_diaria", "perdida_diaria", "pct"], ["max_drawdown", "drawdown", "pct"],
  ["max_posiciones", "posiciones", "int"], ["max_exposicion", "exposicion", "usdt"],
];
const LINES = { stop: { color: "#ef5350", title: "stop" }, objetivo: { color: "#26a69a", title: "objetivo" } };

function formato(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "pct") return `${(value * 100).toFixed(2)} %`;
  if (kind === "usdt") return `${Number(value).toFixed(2)} USDT`;
  return typeof value === "number" ? String(Number(value.toPrecision(8))) : String(value);
}

function celdas(row, values) {
  for (const [value, cls] of values) {
    const cell = document.createElement("td");
    cell.textContent = value;
    if (cls) cell.className = cls;
    row.append(cell);
  }
  return row;
}

function pares(dl, rows) {
  dl.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

/** An open position from GET /bots/<id> (a trade) or a `posicion` message, in one shape. */
function posicionDe({ side, lado, entry_price, entrada, quantity, cantidad }) {
  const largo = side ? side === "long" : lado === "compra";
  return { lado: largo ? "compra" : "venta", entrada: entry_price ?? entrada, cantidad: quantity ?? cantidad };
}

export class PanelBots {
  /**
   * @param {{grafico: Object, flujo: function(): {symbol: string, interval: string},
   *   onMarcadores: function(): void, onSeleccion: function(number): void,
   *   onVerMercado: function(string, string): void}} opciones
   */
  constructor({ grafico, flujo, onMarcadores, onSeleccion, onVerMercado }) {
    Object.assign(this, { grafico, flujo, onMarcadores, onSeleccion, onVerMercado });
    this.bots = new Map(); // id -> summary (GET /bots)
    this.id = null;
    this.detalle = null;
    this.operaciones = [];
    this.posicion = null; // {lado, entrada, cantidad, stop, objetivo} or null
    this.lineas = { stop: null, objetivo: null }; // price lines on the candle series
    this.refrescadoEn = 0;
    this.cargando = null; // the GET /bots in flight, if any
    this.#enlazar();
  }

  #enlazar() {
    for (const command of ["pausar", "reanudar", "parar"]) {
      $(`bot-${command}`).addEventListener("click", () => this.#mandar(`/bots/${this.id}/${command}`, `${command}: enviado`));
    }
    const dialog = $("kill-dialogo");
    $("bot-kill").addEventListener("click", () => {
      dialog.returnValue = "";
      dialog.showModal();
    });
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "confirmar") this.#mandar("/kill", "kill switch enviado: se detienen todos los bots");
    });
    $("bot-ver").addEventListener("click", () => this.detalle && this.onVerMercado(this.detalle.symbol, this.detalle.interval));
  }

  /** GET /bots, then the detail of `preferido` (or of the bot already selected, or the first). */
  async cargar(preferido) {
    try {
      const { bots } = await api("/bots");
      this.bots = new Map(bots.map((b) => [b.id, b]));
      this.#lista();
      const id = [this.id, preferido].find((candidate) => this.bots.has(candidate)) ?? bots[0]?.id ?? null;
      if (id !== null) await this.seleccionar(id);
    } catch (error) {
      this.#error(error);
    }
  }

  async seleccionar(id) {
    if (id !== this.id) {
      this.id = id;
      this.detalle = null;
      this.operaciones = [];
      this.posicion = null;
      this.onSeleccion(id);
      this.#lista();
    }
    await this.refrescar();
  }

  /** Re-read the selected bot: detail, trades and orders. */
  async refrescar() {
    const id = this.id;
    if (id === null) return;
    this.refrescadoEn = performance.now();
    try {
      const [detalle, { operaciones }, { ordenes }] = await Promise.all([
        api(`/bots/${id}`), api(`/bots/${id}/operaciones`), api(`/bots/${id}/ordenes?limit=${ORDERS}`),
      ]);
      if (id !== this.id) return;
      this.detalle = detalle;
      this.operaciones = operaciones;
      this.posicion = detalle.posicion && { ...posicionDe(detalle.posicion), ...(detalle.proteccion || {}) };
      this.bots.set(id, { ...this.bots.get(id), estado: detalle.estado, motivo: detalle.motivo });
      this.#lista();
      this.#pintar();
      $("bot-ordenes").replaceChildren(...ordenes.map((o) => this.#filaOrden(o)));
    } catch (error) {
      this.#error(error);
    }
  }

  /** A bridge message of the bot host: `bot`, `posicion` or `orden`. */
  mensaje(message) {
    if (!this.bots.has(message.id)) {
      // A bot created elsewhere since the list was read: read it again (once at a time).
      if (message.tipo === "bot" && !this.cargando) this.cargando = this.cargar(this.id).finally(() => { this.cargando = null; });
      return;
    }
    if (message.tipo === "bot") {
      this.bots.set(message.id, { ...this.bots.get(message.id), estado: message.estado, ...("motivo" in message ? { motivo: message.motivo } : {}) });
      this.#lista();
    }
    if (message.id !== this.id || !this.detalle) return;
    if (message.tipo === "bot") this.#alBot(message);
    else if (message.tipo === "posicion") this.#alPosicion(message);
    else if (message.tipo === "orden") this.#alOrden(message.orden);
  }

  /** The bot's markers when the chart shows its market, none otherwise. */
  marcadores() {
    return this.#enGrafico() ? marcadoresDeTrades(this.operaciones, `bot-${this.id}`) : [];
  }

  /** The chart changed market: markers and price lines follow. */
  redibujar() {
    this.#lineas();
    this.onMarcadores();
    $("bot-ver").hidden = !this.detalle || this.#enGrafico();
  }

  #alBot(message) {
    this.detalle.estado = message.estado;
    if ("motivo" in message) this.detalle.motivo = message.motivo;
    if (message.equity !== undefined) this.detalle.equity = message.equity;
    this.#cabecera();
    this.#resumen();
    // A state change is rare: re-read at once. Per-candle steps: at most every REFRESH_MS.
    if (!("open_time" in message) || performance.now() - this.refrescadoEn > REFRESH_MS) this.refrescar();
  }

  #alPosicion(message) {
    this.posicion = message.lado ? { ...posicionDe(message), stop: message.stop, objetivo: message.objetivo } : null;
    this.#resumen();
    this.#lineas();
    this.refrescar(); // the trade's times come with GET /bots/<id>/operaciones
  }

  #alOrden(orden) {
    const body = $("bot-ordenes");
    const row = this.#filaOrden(orden);
    const old = body.querySelector(`tr[data-id="${orden.id}"]`);
    if (old) old.replaceWith(row);
    else body.prepend(row);
    while (body.children.length > ORDERS) body.lastChild.remove();
  }

  #enGrafico() {
    const { symbol, interval } = this.flujo();
    return Boolean(this.detalle) && this.detalle.symbol === symbol && this.detalle.interval === interval;
  }

  #pintar() {
    $("bot-detalle").hidden = false;
    this.#cabecera();
    this.#resumen();
    this.#riesgo();
    this.redibujar();
  }

  #cabecera() {
    const d = this.detalle;
    $("bot-nombre").textContent = `${d.nombre} · ${d.symbol} ${d.interval} · ${d.estrategia} · ${d.modo}`;
    $("bot-estado").textContent = d.estado;
    $("bot-estado").dataset.estado = d.estado;
    $("bot-motivo").textContent = d.motivo;
  }

  #resumen() {
    const d = this.detalle;
    const p = this.posicion;
    pares($("bot-resumen"), [
      ["posición", p ? `${p.lado} ${formato(p.cantidad)} @ ${formato(p.entrada)}` : "plana"],
      ["stop", formato(p?.stop)], ["objetivo", formato(p?.objetivo)],
      ["PnL cerrado", `${formato(d.pnl_cerrado, "usdt")} (${d.operaciones_cerradas} op.)`],
      ["equity", formato(d.equity, "usdt")],
    ]);
  }

  #riesgo() {
    const limits = this.detalle.config.riesgo;
    const usage = this.detalle.riesgo_uso;
    const measured = new Set(USAGE.map(([limit]) => limit));
    const rows = USAGE.map(([limit, key, kind]) => [limit, formato(limits[limit], kind), formato(usage?.[key], kind)]);
    for (const [limit, value] of Object.entries(limits)) if (!measured.has(limit)) rows.push([limit, formato(value), "—"]);
    $("bot-riesgo").replaceChildren(...rows.map((values) => {
      const row = celdas(document.createElement("tr"), values.map((v) => [v]));
      row.dataset.limite = values[0];
      return row;
    }));
  }

  /** The stop and target price lines: shown while a position is open on the chart's market. */
  #lineas() {
    for (const [name, style] of Object.entries(LINES)) {
      const price = this.#enGrafico() ? this.posicion?.[name] : null;
      const line = this.lineas[name];
      if (line && line.options().price === price) continue;
      if (line) this.grafico.velas.removePriceLine(line);
      this.lineas[name] = Number.isFinite(price) ? this.grafico.velas.createPriceLine({
        price, color: style.color, title: style.title, lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, axisLabelVisible: true,
      }) : null;
    }
  }

  #lista() {
    $("bots-vacio").hidden = this.bots.size > 0;
    $("bots").replaceChildren(...[...this.bots.values()].map((bot) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "bot-item secondary";
      button.dataset.id = bot.id;
      button.setAttribute("aria-pressed", String(bot.id === this.id));
      const badge = document.createElement("span");
      badge.className = "estado";
      badge.dataset.estado = bot.estado;
      badge.textContent = bot.estado;
      button.append(`${bot.nombre} `, badge);
      button.addEventListener("click", () => this.seleccionar(bot.id));
      item.append(button);
      return item;
    }));
  }

  #filaOrden(orden) {
    const row = celdas(document.createElement("tr"), [
      [orden.id], [orden.lado, orden.lado], [orden.tipo], [orden.cantidad], [orden.precio ?? orden.precio_disparo ?? "mercado"], [orden.estado],
    ]);
    row.dataset.id = orden.id;
    return row;
  }

  /** POST a command; its refusal (409 with the allowed moves) shows in the panel. */
  async #mandar(path, done) {
    $("bot-error").textContent = "";
    $("bot-aviso").textContent = "";
    try {
      await conToken(() => api(path, { method: "POST" }));
      $("bot-aviso").textContent = done;
    } catch (error) {
      this.#error(error);
    }
  }

  #error(error) {
    const allowed = error.detalle?.permitidos;
    const hint = allowed ? ` (permitidos: ${allowed.join(", ") || "ninguno"})` : "";
    $("bot-error").textContent = `${error.message}${hint}`;
  }
}
