/**
 * The web console, framework-neutral like the task handler: NeutralRequest in, NeutralResponse
 * out. Every path under the console path (page, assets, API) is authorised first, so a refused
 * request learns nothing, not even that a queue exists.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DeferredAdmin as Deferred } from '../core/admin.js';
import { createCodec, type Codec } from '../core/codec.js';
import { CloudDeferError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { header } from '../http/auth.js';
import type { NeutralRequest, NeutralResponse } from '../http/handler.js';
import { ConsoleApi, ConsoleApiError, errorResponse, json } from './api.js';
import { admission, crossSiteReason, csrfReason, loopbackOnly } from './guard.js';
import { DEFAULT_CONSOLE_PATH, type ConsoleAuthorization, type ConsoleOptions, type ConsoleRequest } from './options.js';
import { DEFAULT_STATS_SCAN_LIMIT } from './stats.js';

export type { ConsoleOptions, ConsoleRequest, ConsolePrincipal, ConsoleAuthorization } from './options.js';
export { DEFAULT_CONSOLE_PATH } from './options.js';

/** Headers on every console answer: no caching, no framing (clickjacking), no sniffing, no cross-origin reads. */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
};

interface Asset {
  body: string;
  type: string;
  etag: string;
}

export interface ConsoleHandlerSettings {
  deferred: Deferred;
  logger: Logger;
  authorize: ConsoleOptions['authorize'];
  path?: string;
  codec?: Codec;
  statsScanLimit?: number;
  pollIntervalMs?: number;
  allowedOrigins?: readonly string[];
  now?: () => number;
  /** Where index.html, console.css and console.js are. Default: ./static next to this file. */
  staticDir?: string;
}

const text = (status: number, body: string, headers: Record<string, string> = {}): NeutralResponse => ({
  status,
  headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
  body,
});

export class ConsoleHandler {
  readonly path: string;
  private readonly api: ConsoleApi;
  private readonly assets = new Map<string, Asset>();

  constructor(private readonly settings: ConsoleHandlerSettings) {
    const base = (settings.path ?? DEFAULT_CONSOLE_PATH).replace(/\/+$/, '');
    if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(base)) {
      throw new CloudDeferError('INVALID_OPTION', `console.path must look like /a/b (got ${JSON.stringify(settings.path)}).`);
    }
    const scanLimit = settings.statsScanLimit ?? DEFAULT_STATS_SCAN_LIMIT;
    if (!Number.isInteger(scanLimit) || scanLimit < 1) throw new CloudDeferError('INVALID_OPTION', 'console.statsScanLimit must be a whole number >= 1.');
    const pollIntervalMs = settings.pollIntervalMs ?? 3000;
    if (!(pollIntervalMs >= 500)) throw new CloudDeferError('INVALID_OPTION', 'console.pollIntervalMs must be at least 500.');
    this.path = base;
    this.api = new ConsoleApi({
      deferred: settings.deferred,
      codec: settings.codec ?? createCodec(),
      logger: settings.logger,
      statsScanLimit: scanLimit,
      pollIntervalMs,
      now: settings.now ?? Date.now,
    });
  }

  /** Whether the console answers this path (relative to where the middleware is mounted). */
  owns(requestPath: string): boolean {
    return requestPath === this.path || requestPath.startsWith(`${this.path}/`);
  }

  async handle(request: NeutralRequest): Promise<NeutralResponse> {
    const response = await this.answer(request);
    return { ...response, headers: { ...COMMON_HEADERS, ...response.headers } };
  }

  private async answer(request: NeutralRequest): Promise<NeutralResponse> {
    const { logger } = this.settings;
    const info: ConsoleRequest = {
      method: request.method,
      path: request.path,
      headers: request.headers,
      ...(request.query !== undefined ? { query: request.query } : {}),
      ...(request.remoteAddress !== undefined ? { remoteAddress: request.remoteAddress } : {}),
      ...(request.secure !== undefined ? { secure: request.secure } : {}),
    };
    let answer: ConsoleAuthorization;
    try {
      answer = await this.settings.authorize(info);
    } catch (err) {
      logger.warn('console authorize hook threw; request refused', { path: request.path, error: err instanceof Error ? err.message : String(err) });
      answer = false;
    }
    const admitted = admission(answer);
    if (!admitted.ok) return text(admitted.status, admitted.status === 401 ? 'Unauthorized' : 'Forbidden');

    const rest = request.path.slice(this.path.length);
    const read = request.method === 'GET' || request.method === 'HEAD';
    if (rest === '' || rest === '/' || rest === '/index.html' || rest.startsWith('/assets/')) {
      if (!read) return text(405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
      // Relative URLs on the page need the trailing slash; a relative Location works under any mount point.
      if (rest === '')
        return text(302, 'Found', { Location: `${this.path.slice(this.path.lastIndexOf('/') + 1)}/${request.query ? `?${request.query}` : ''}` });
      return this.asset(rest.startsWith('/assets/') ? rest.slice('/assets/'.length) : 'index.html', request);
    }
    if (!rest.startsWith('/api/')) return text(404, 'Not Found');
    try {
      const segments = rest
        .slice('/api/'.length)
        .split('/')
        .map((s) => decodeURIComponent(s));
      if (segments.some((s) => s === '')) throw new ConsoleApiError(404, 'NOT_FOUND', 'Not found.');
      if (!read) this.checkAction(info);
      return await this.api.handle(info, segments, admitted.principal);
    } catch (err) {
      if (err instanceof URIError) return json(400, { error: { code: 'BAD_REQUEST', message: 'Malformed path.' } });
      return errorResponse(err, logger);
    }
  }

  /** Cross-site request protection for everything that changes state. */
  private checkAction(request: ConsoleRequest): void {
    const crossSite = crossSiteReason(request, this.settings.allowedOrigins ?? []);
    const csrf = crossSite ? undefined : csrfReason(request);
    const reason = crossSite ?? csrf;
    if (!reason) return;
    this.settings.logger.warn('console action refused', { path: request.path, reason });
    throw crossSite
      ? new ConsoleApiError(403, 'CROSS_SITE', `Refused: not sent by the console page (${reason}).`)
      : new ConsoleApiError(403, 'CSRF', `Refused: ${reason}. Reload the console.`);
  }

  private asset(name: string, request: NeutralRequest): NeutralResponse {
    const type = ASSETS[name];
    if (!type) return text(404, 'Not Found');
    let asset = this.assets.get(name);
    if (!asset) {
      const dir = this.settings.staticDir ?? path.join(__dirname, 'static');
      const body = readFileSync(path.join(dir, name), 'utf8');
      asset = { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
      this.assets.set(name, asset);
    }
    const headers: Record<string, string> = { 'Content-Type': asset.type, 'Cache-Control': 'no-cache', ETag: asset.etag };
    if (name === 'index.html') headers['Content-Security-Policy'] = PAGE_POLICY;
    if (header(request.headers, 'if-none-match') === asset.etag) return { status: 304, headers, body: '' };
    return { status: 200, headers, body: asset.body };
  }
}

/**
 * The console a Deferred gets: with `options`, behind its authorize hook; with none on the
 * embedded default, loopback only; otherwise none (`false` turns it off everywhere).
 */
export function createConsoleHandler(deferred: Deferred, options: ConsoleOptions | false | undefined, codec?: Codec): ConsoleHandler | undefined {
  if (options === false) return undefined;
  if (!options && deferred.mode !== 'embedded') return undefined;
  return new ConsoleHandler({
    deferred,
    logger: deferred.logger,
    authorize: options ? (request) => options.authorize(request) : loopbackOnly,
    ...(options?.path !== undefined ? { path: options.path } : {}),
    ...(codec ? { codec } : {}),
    ...(options?.statsScanLimit !== undefined ? { statsScanLimit: options.statsScanLimit } : {}),
    ...(options?.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    ...(options?.allowedOrigins !== undefined ? { allowedOrigins: options.allowedOrigins } : {}),
  });
}
