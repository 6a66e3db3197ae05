// The console talks to the public API only, on the same origin, with the session's bearer token.
// Every non-2xx answer becomes an ApiProblem carrying the problem+json (RFC 9457) body, whose
// `detail` is what the user reads.

import { session, configValue } from './auth.js';
import { t } from './i18n.js';

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || t('problem.status', { status }));
    this.status = status;
    this.problem = problem || {};
  }
}

async function readBody(response) {
  const type = response.headers.get('content-type') || '';
  if (response.status === 204) return null;
  const text = await response.text();
  if (type.includes('json')) {
    try { return JSON.parse(text); } catch { return { detail: text }; }
  }
  return text;
}

/**
 * api('GET', '/presales/…') → the parsed body of a 2xx answer (null for 204); throws ApiProblem
 * otherwise. `options.raw` returns the Response itself (for CSV downloads); `options.token`
 * overrides the session's token; `options.anonymous` sends none.
 */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: options.accept || 'application/json' };
  const token = options.anonymous ? null : (options.token || session()?.token);
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method === 'POST' && options.idempotent) {
    headers['Idempotency-Key'] = uuid();
  }
  let response;
  try {
    response = await fetch((configValue()?.apiBase || '') + path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch (error) {
    throw new ApiProblem(0, { title: 'network', detail: t('problem.network', { detail: error.message }) });
  }
  if (options.raw && response.ok) return response;
  const parsed = await readBody(response);
  if (!response.ok) {
    const problem = parsed && typeof parsed === 'object'
      ? parsed
      : { status: response.status, detail: (typeof parsed === 'string' && parsed.trim()) || t('problem.status', { status: response.status }) };
    if (!problem.detail) problem.detail = problem.title || problem.message || t('problem.status', { status: response.status });
    throw new ApiProblem(response.status, problem);
  }
  return parsed;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body, options);

/** A random id (crypto.randomUUID where the context allows it). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** An instant from the API: RFC 3339, or the "2026-12-01 10:50:00.123 +00:00:00" some fields use. */
export function parseInstant(text) {
  if (!text) return null;
  let ms = Date.parse(text);
  if (!Number.isNaN(ms)) return ms;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?([+-]\d{2}):?(\d{2})(?::?\d{2})?$/.exec(String(text).trim());
  if (!m) return null;
  const frac = m[2].replace(/(\.\d{3})\d+$/, '$1');
  ms = Date.parse(`${m[1]}T${frac}${m[3]}:${m[4]}`);
  return Number.isNaN(ms) ? null : ms;
}
