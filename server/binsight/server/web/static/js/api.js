// JSON API client: bearer token, clear errors, 401 signs the user out.
import { clearToken, getToken } from './auth.js';

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    // The error's whole JSON body: some carry more than `detail` (a refused move's `breaches`).
    this.body = body;
  }
}

function detailMessage(body, status, statusText) {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = body.detail;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) {
      return d.map((e) => `${(e.loc || []).filter((p) => p !== 'body').join('.') || 'request'}: ${e.msg}`).join('; ');
    }
    return JSON.stringify(d);
  }
  return `${status} ${statusText}`.trim();
}

/**
 * Call the API. Returns parsed JSON, or a Blob when `blob` is set.
 * Throws ApiError with the server's message; on 401 also fires `binsight:unauthorized`.
 */
export async function api(path, { method = 'GET', body, blob = false, signal } = {}) {
  const headers = { Accept: blob ? '*/*' : 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, `The server is not reachable (${err.message}).`);
  }
  if (!res.ok) {
    let parsed = null;
    try { parsed = await res.json(); } catch { /* not JSON */ }
    const message = detailMessage(parsed, res.status, res.statusText);
    if (res.status === 401) {
      clearToken();
      window.dispatchEvent(new CustomEvent('binsight:unauthorized', { detail: message }));
    }
    throw new ApiError(res.status, message, parsed);
  }
  // The service worker answered from its saved copy (no network): tell the page, which says so.
  const cached = res.headers.get('X-Binsight-Cached');
  window.dispatchEvent(new CustomEvent('binsight:data', { detail: { path, cachedAt: cached === null ? null : Number(cached) } }));
  if (blob) return res.blob();
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Build a query string, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  }
  const str = q.toString();
  return str ? `?${str}` : '';
}
