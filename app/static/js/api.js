// Thin fetch wrapper for the REST API: JSON in and out, errors as ApiError with the field map.
import { guardarTokenApi, tokenApi } from "./session_utils.js";

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {Object<string,string>} detalle */
  constructor(status, message, detalle = {}) {
    super(message);
    this.status = status;
    this.detalle = detalle;
  }
}

/** Call the API; mutating calls carry the API token when the user gave one (API_TOKEN set). */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = tokenApi();
  if (token && method !== "GET") headers.Authorization = `Bearer ${token}`;
  let reply;
  try {
    reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, `sin conexión con el servidor (${error.message})`);
  }
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new ApiError(reply.status, data.error || reply.statusText, data.detalle || {});
  return data;
}

/** Query string from an object, skipping empty values. */
export function consulta(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  return query.toString();
}

/** Run a mutating call; when the server refuses it for a missing token (401), ask once and retry. */
export async function conToken(call) {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const token = window.prompt("API token (API_TOKEN del servidor):");
      if (token) {
        guardarTokenApi(token);
        return call();
      }
    }
    throw error;
  }
}
