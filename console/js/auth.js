// Sign-in. `GET /console/config.json` says how: `dev` (the local stack: the gateway mints a dev
// token for a chosen role at `POST /_local/token`) or `oidc` (the identity provider's hosted
// login, authorization code + PKCE). The token lives in sessionStorage (this tab only, gone
// when it closes) and goes to the API as a bearer token; the console reads its claims only to
// choose which screens to show — the API enforces roles and tenants itself.

const SESSION_KEY = 'console.session';
const PKCE_KEY = 'console.pkce';

let config = null;
let current = null;

function readStored(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch { return null; }
}

export async function loadConfig() {
  if (config) return config;
  const response = await fetch('/console/config.json', { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!response.ok) {
    // A misconfigured sign-in answers 503 problem+json: its detail says what is missing.
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `config.json: HTTP ${response.status}`);
  }
  const raw = await response.json();
  config = normalize(raw);
  return config;
}

/** Accept the config's fields flat or under `auth`/`oidc`. */
function normalize(raw) {
  const auth = (raw && typeof raw.auth === 'object' && raw.auth) || {};
  const oidc = (raw && typeof raw.oidc === 'object' && raw.oidc) || auth.oidc || {};
  const pick = (...names) => {
    for (const source of [oidc, auth, raw]) {
      for (const name of names) if (source && source[name] !== undefined && source[name] !== null) return source[name];
    }
    return undefined;
  };
  const mode = (typeof raw.auth === 'string' ? raw.auth : undefined) || auth.mode || raw.auth_mode || raw.mode || 'dev';
  let scopes = pick('scopes', 'scope') || 'openid';
  if (Array.isArray(scopes)) scopes = scopes.join(' ');
  const redirectPath = pick('redirect_path');
  return {
    raw,
    mode,
    apiBase: (raw && raw.api_base) || '',
    issuer: pick('issuer'),
    authorizeUrl: pick('authorize_url', 'authorization_endpoint', 'authorization_url'),
    tokenUrl: pick('token_url', 'token_endpoint'),
    clientId: pick('client_id', 'clientId'),
    scopes,
    redirectUri: pick('redirect_uri')
      || (redirectPath ? location.origin + redirectPath : new URL('./', location.href).href.split('#')[0].split('?')[0]),
    // Which token the API gets: the access token (the template's JwtIssuer/JwtAudience describe
    // access tokens), unless config.json says "api_token": "id_token".
    apiToken: pick('api_token', 'bearer') || 'access_token',
    // Dev mode: where the local gateway mints tokens.
    tokenPath: (mode === 'dev' && pick('token_url')) || '/_local/token',
    logoutUrl: pick('logout_url', 'end_session_endpoint'),
  };
}

export function decodeClaims(token) {
  try {
    const part = token.split('.')[1];
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function sessionFrom(token, extra = {}) {
  const claims = decodeClaims(token);
  const role = claims.role || claims['custom:role'] || (Array.isArray(claims['cognito:groups']) ? claims['cognito:groups'][0] : '') || '';
  let clients = claims.clients ?? claims['custom:clients'] ?? '';
  if (Array.isArray(clients)) clients = clients.join(',');
  return {
    token,
    sub: claims.sub || '',
    role: String(role).toLowerCase(),
    clients: String(clients).split(/[\s,]+/).filter(Boolean),
    exp: claims.exp || null,
    ...extra,
  };
}

export function session() {
  if (current) return current;
  const stored = readStored(SESSION_KEY);
  if (stored && stored.token && (!stored.exp || stored.exp * 1000 > Date.now())) current = stored;
  return current;
}

function keep(next) {
  current = next;
  try { sessionStorage.setItem(SESSION_KEY, JSON.stringify(next)); } catch { /* memory only */ }
  return next;
}

export function signOut() {
  current = null;
  try { sessionStorage.removeItem(SESSION_KEY); } catch { /* ignore */ }
}

/** Dev sign-in: the local gateway mints the profile's dev token. */
export async function devSignIn({ role, sub, clients }) {
  const { ApiProblem } = await import('./api.js');
  const response = await fetch(config.tokenPath, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ role, sub, clients }),
  });
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json().catch(() => ({})) : await response.text();
  if (!response.ok) {
    const problem = typeof body === 'object' ? body : { detail: body || `HTTP ${response.status}` };
    throw new ApiProblem(response.status, problem);
  }
  const token = typeof body === 'string' ? body.trim() : (body.token || body.access_token || body.id_token);
  return keep(sessionFrom(token, { mode: 'dev' }));
}

// ----- OIDC: authorization code + PKCE --------------------------------------------------------

function base64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(length = 48) {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

export async function oidcStart(returnTo) {
  const verifier = randomString(64);
  const state = randomString(24);
  const nonce = randomString(24);
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, nonce, returnTo }));
  const url = new URL(config.authorizeUrl);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    scope: config.scopes,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Back from the IdP with ?code&state: exchange the code; the route to return to, or null. */
export async function oidcCallback() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const pending = readStored(PKCE_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  // Drop ?code=… from the address bar whatever happens next.
  history.replaceState(null, '', location.pathname + (pending?.returnTo || '#/'));
  if (params.has('error')) throw new Error(params.get('error_description') || params.get('error'));
  if (!pending || pending.state !== params.get('state')) throw new Error('state mismatch');
  const response = await fetch(config.tokenUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: config.redirectUri,
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(tokens.error_description || tokens.error || `HTTP ${response.status}`);
  const idClaims = tokens.id_token ? decodeClaims(tokens.id_token) : {};
  if (tokens.id_token && idClaims.nonce && idClaims.nonce !== pending.nonce) throw new Error('nonce mismatch');
  const bearer = (config.apiToken === 'access_token' ? tokens.access_token : tokens.id_token) || tokens.access_token;
  const next = sessionFrom(bearer, { mode: 'oidc' });
  // The role may be only in the ID token (e.g. Cognito custom attributes).
  if (!next.role && tokens.id_token) {
    const fromId = sessionFrom(tokens.id_token);
    next.role = fromId.role;
    next.clients = next.clients.length ? next.clients : fromId.clients;
    next.sub = next.sub || fromId.sub;
  }
  keep(next);
  return pending.returnTo || '#/';
}

export const configValue = () => config;
