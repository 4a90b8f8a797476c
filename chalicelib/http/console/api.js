// The REST API: one fetch wrapper that adds the tab's bearer token and explains refusals.
const ROOT = new URL("../", import.meta.url); // the service's root (the stage on AWS)
const API = new URL("api/v1/saga/", ROOT);
const KEY = "saga-console.token";

export const token = {
  // sessionStorage: kept for this tab only, gone when it closes.
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value.trim().replace(/^bearer\s+/i, "")),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the service answered ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.body = body;
  }
}

// What a refusal means, in words an operator can act on.
export function explain(error) {
  if (!(error instanceof ApiError)) {
    return `The service cannot be reached (${error.message}). Is it running?`;
  }
  const said = error.message ? ` The service says: “${error.message}”.` : "";
  switch (error.status) {
    case 401:
      return "401 Unauthorized: this service needs a valid bearer token, and the one given " +
        "is missing, malformed, expired or not signed by a key it trusts." + said;
    case 403:
      return "403 Forbidden: your token is valid, but its role does not allow this." + said;
    case 404: return "404 Not found." + said;
    case 409: return "409 Conflict: the execution is not in a state that allows this." + said;
    case 429: return "429 Too many requests: wait a moment and try again." + said;
    default: return `${error.status} ${error.code || "error"}.` + said;
  }
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, API), init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { raw: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { status: response.status, body: parsed };
}

export const get = async (path) => (await call("GET", path)).body;

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}
