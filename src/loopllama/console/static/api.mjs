// The public API, called with the key the user signed in with. The key lives in session
// storage only (never a cookie, never a URL) and goes out as the Authorization header.

const KEY = "loopllama.apiKey";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
  headers() {
    return { Authorization: `Bearer ${this.key}` };
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Connectivity: a failed fetch raises the banner and polls /healthz until the server answers
// again; then listeners (the router re-renders the page) are told.
const listeners = new Set();
let offline = false;
export function onConnectivity(listener) {
  listeners.add(listener);
}
export function networkDown() {
  if (offline) return;
  offline = true;
  listeners.forEach((listener) => listener(false));
  const probe = async () => {
    try {
      const response = await fetch("/healthz", { cache: "no-store" });
      if (response.ok) {
        offline = false;
        listeners.forEach((listener) => listener(true));
        return;
      }
    } catch {
      // still down
    }
    setTimeout(probe, 1000);
  };
  setTimeout(probe, 500);
}
export function networkUp() {
  if (!offline) return;
  offline = false;
  listeners.forEach((listener) => listener(true));
}

export async function api(method, path, body) {
  const headers = session.headers();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    networkDown();
    throw new ApiError(0, "The server cannot be reached. Retrying…");
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // a proxy's HTML page: worded below from the status
  }
  if (!response.ok) {
    const message = typeof payload?.error === "string" ? payload.error : `HTTP ${response.status}`;
    if (response.status === 401) window.dispatchEvent(new CustomEvent("unauthorized", { detail: message }));
    throw new ApiError(response.status, message);
  }
  return payload;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}
