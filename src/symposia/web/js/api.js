// Calls to the Symposia API: JSON in and out, the CSRF header on state-changing requests,
// and a 401 sends the browser to the sign-in page.

let session = { signed_in: false };

export class ApiError extends Error {
  constructor(status, body) {
    // /api errors are {"code", "message"}; /v1 ones put them under "error".
    const detail = body?.message ?? body?.error?.message ?? `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.body = body;
  }
}

export function signinUrl() {
  const here = location.pathname + location.search + location.hash;
  return "/signin?next=" + encodeURIComponent(here);
}

/** `GET /auth/session`; a server without browser sessions (404) or an error means signed out. */
export async function loadSession() {
  try {
    const response = await fetch("/auth/session", {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    session = response.ok ? await response.json() : { signed_in: false };
  } catch {
    session = { signed_in: false };
  }
  return session;
}

export function currentSession() {
  return session;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf_token) headers["X-CSRF-Token"] = session.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign(signinUrl());
    throw new ApiError(401, null);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export async function signOut() {
  await api("POST", "/auth/signout");
  location.assign(signinUrl());
}

let modelsPromise = null;

/** The model ids of `GET /api/models`, fetched once per page. */
export function models() {
  modelsPromise ??= api("GET", "/api/models").then((data) => data.models.map((m) => m.id));
  return modelsPromise;
}
