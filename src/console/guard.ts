/**
 * Who may use the console, and which actions are really the user's own: the authorize hook (or
 * the loopback-only default of the embedded emulator), a same-origin check and a double-submit
 * CSRF token. See docs/console.md for why the three together.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { header, isAllowedHost } from '../http/auth.js';
import type { ConsoleAuthorization, ConsolePrincipal, ConsoleRequest } from './options.js';

export const CSRF_COOKIE = 'cloud_defer_csrf';
export const CSRF_HEADER = 'x-cloud-defer-csrf';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export type Admission = { ok: true; principal: ConsolePrincipal } | { ok: false; status: 401 | 403; reason: string };

/** Turns the hook's answer into a decision; anything that is not a principal refuses. */
export function admission(answer: ConsoleAuthorization): Admission {
  if (answer === undefined || answer === null) return { ok: false, status: 401, reason: 'the authorize hook found no user' };
  if (answer === false) return { ok: false, status: 403, reason: 'the authorize hook refused' };
  if (typeof answer === 'string' ? answer.length > 0 : typeof answer === 'object') return { ok: true, principal: answer };
  return { ok: false, status: 403, reason: 'the authorize hook returned something that is not a principal' };
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Headers a proxy or tunnel adds: such a request came from elsewhere, whatever the socket says. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-host'] as const;

/**
 * The embedded default's hook: the developer's own machine only. A local proxy or tunnel (ngrok,
 * a dev server's proxy) makes every request look local, so forwarded requests are refused too;
 * and a page on another site that rebinds its DNS name to 127.0.0.1 still sends its own name as
 * Host, so only a loopback literal or `localhost` is served.
 */
export function loopbackOnly(request: ConsoleRequest): ConsoleAuthorization {
  if (!isLoopback(request.remoteAddress)) return false;
  if (!isAllowedHost(header(request.headers, 'host'))) return false;
  if (FORWARDING_HEADERS.some((name) => header(request.headers, name) !== undefined)) return false;
  return `local (${request.remoteAddress})`;
}

/** A short name for the page's "signed in as". */
export function principalLabel(principal: ConsolePrincipal): string {
  if (typeof principal === 'string') return principal;
  for (const key of ['email', 'name', 'id', 'sub', 'user']) {
    const value = principal[key];
    if (typeof value === 'string' && value) return value;
  }
  return 'authorized user';
}

/** Why a state-changing request is not from the console's own page, or undefined when it is. */
export function crossSiteReason(request: ConsoleRequest, allowedOrigins: readonly string[]): string | undefined {
  const site = header(request.headers, 'sec-fetch-site');
  const origin = header(request.headers, 'origin');
  if (site === undefined && origin === undefined) return 'the request carries neither Origin nor Sec-Fetch-Site';
  if (site !== undefined && site !== 'same-origin') return `Sec-Fetch-Site is ${site}`;
  if (origin !== undefined) {
    if (allowedOrigins.includes(origin)) return undefined;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return `Origin ${origin} is not a URL`;
    }
    const own = [header(request.headers, 'host'), header(request.headers, 'x-forwarded-host')?.split(',')[0]?.trim()];
    if (!own.includes(host)) return `Origin ${origin} is not this host`;
  }
  return undefined;
}

export function cookieValue(request: ConsoleRequest, name: string): string | undefined {
  const raw = header(request.headers, 'cookie');
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The session's token: the one its cookie already holds, or a new one to set. */
export function sessionToken(request: ConsoleRequest): { token: string; setCookie?: string } {
  const existing = cookieValue(request, CSRF_COOKIE);
  if (existing && TOKEN_SHAPE.test(existing)) return { token: existing };
  const token = randomBytes(32).toString('base64url');
  // No Path: it defaults to the API folder (…/console/api), wherever the middleware is mounted.
  const attributes = ['HttpOnly', 'SameSite=Strict', ...(request.secure ? ['Secure'] : [])];
  return { token, setCookie: `${CSRF_COOKIE}=${token}; ${attributes.join('; ')}` };
}

/** Double submit: the header must repeat the cookie, which only the console's own page can read (from /api/session). */
export function csrfReason(request: ConsoleRequest): string | undefined {
  const sent = header(request.headers, CSRF_HEADER);
  const cookie = cookieValue(request, CSRF_COOKIE);
  if (!sent) return `no ${CSRF_HEADER} header`;
  if (!cookie || !TOKEN_SHAPE.test(cookie)) return 'no CSRF cookie (GET api/session first)';
  const a = Buffer.from(sent);
  const b = Buffer.from(cookie);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return 'the CSRF token does not match the cookie';
  return undefined;
}
