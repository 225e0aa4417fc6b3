// Remembers the user's symbol, interval and overlays between visits (localStorage), and the
// API token for this tab only (sessionStorage: a secret should not outlive the session).
const KEY = "kryptelion.sesion";
const TOKEN_KEY = "kryptelion.token";

/** The saved session merged over `defaults` (a corrupt or missing entry gives the defaults). */
export function cargarSesion(defaults) {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "{}");
    return {
      ...defaults,
      ...saved,
      overlays: { ...defaults.overlays, ...(saved.overlays || {}) },
    };
  } catch {
    return { ...defaults };
  }
}

export function guardarSesion(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function tokenApi() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function guardarTokenApi(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The page's public settings, rendered by the server into <script id="config">. */
export function configuracion() {
  return JSON.parse(document.getElementById("config").textContent);
}
