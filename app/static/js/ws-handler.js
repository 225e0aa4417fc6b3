// The connection to the bridge (python -m wsbridge): one socket, the current stream in its URL,
// reconnection forever with backoff and jitter. Every (re)connection starts with a snapshot, so
// nothing missed while away is lost.
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/**
 * The bridge's base URL for a page at `loc` (window.location): over plain http, the bridge's
 * own port on the page's host; behind an https proxy (deploy/gcp/Caddyfile), wss on the page's
 * own host and port under /ws, the one way a secure page may open a socket there.
 * @param {{protocol: string, host: string, hostname: string}} loc
 * @param {number} port BRIDGE_PORT
 */
export function basePuente(loc, port) {
  return loc.protocol === "https:" ? `wss://${loc.host}/ws` : `ws://${loc.hostname}:${port}`;
}

export class ConexionPuente {
  /**
   * @param {string} base the bridge's URL without path (see basePuente)
   * @param {{onMensaje: function(Object): void, onEstado: function(string, string): void}} handlers
   */
  constructor(base, { onMensaje, onEstado }) {
    this.base = base;
    this.onMensaje = onMensaje;
    this.onEstado = onEstado;
    this.ws = null;
    this.stream = null;
    this.intentos = 0;
    this.timer = null;
    this.cerrada = false;
  }

  /** Follow (symbol, interval): a new connection, whose first message is its snapshot. */
  seguir(symbol, interval) {
    this.stream = { symbol, interval };
    this.intentos = 0;
    this.#abrir();
  }

  cerrar() {
    this.cerrada = true;
    clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  #abrir() {
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
    }
    const { symbol, interval } = this.stream;
    const ws = new WebSocket(`${this.base}/?symbol=${encodeURIComponent(symbol)}&interval=${encodeURIComponent(interval)}`);
    this.ws = ws;
    this.onEstado(this.intentos ? "reconectando" : "conectando", "");
    ws.onopen = () => {
      this.intentos = 0;
      this.onEstado("conectado", "");
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.tipo === "error") this.onEstado("error", message.error);
      this.onMensaje(message);
    };
    ws.onclose = (event) => {
      if (this.cerrada || ws !== this.ws) return;
      if (event.code === 1008) return; // a bad stream: retrying cannot help
      this.#reintentar();
    };
  }

  #reintentar() {
    this.intentos += 1;
    const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (this.intentos - 1));
    this.onEstado("reconectando", `nuevo intento en ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this.#abrir(), delay * (0.5 + Math.random() / 2));
  }
}
