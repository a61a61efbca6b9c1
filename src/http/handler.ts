/**
 * The framework-neutral task handler: routing, method check, authentication, bounded body,
 * and the mapping of a run's outcome to the HTTP answer Cloud Tasks acts on.
 */
import type { Delivery, DeliveryOutcome, DeferredEngine } from '../core/engine.js';
import { CloudDeferError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Readable } from 'node:stream';
import { header, type HeaderBag, type TaskAuthenticator } from './auth.js';
import { TRACE_HEADERS } from '../core/telemetry.js';
import { traceLogFields, traceOf } from '../logging/trace-header.js';

export interface NeutralRequest {
  method: string;
  /** Path relative to where the middleware is mounted, without the query string. */
  path: string;
  headers: HeaderBag;
  remoteAddress?: string;
  /** The raw query string, without the `?` (the console's filters and cursors). */
  query?: string;
  /** The request came over HTTPS, as the framework sees it (trusted proxies included). */
  secure?: boolean;
  /** Reads the body, rejecting with PAYLOAD_TOO_LARGE past `limit` bytes. */
  readBody(limit: number): Promise<Uint8Array>;
}

export interface NeutralResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface HandlerSettings {
  engine: DeferredEngine;
  authenticator: TaskAuthenticator;
  logger: Logger;
  handlerPath: string;
  /** Authenticated path that runs the engine's housekeeping, sweep() (for Cloud Scheduler). */
  sweepPath: string;
  maxBodyBytes: number;
  /** When set (embedded mode), only requests whose Host it accepts are served: DNS rebinding. */
  hostAllowed?: (hostHeader: string | undefined) => boolean;
}

const text = (status: number, body: string, headers: Record<string, string> = {}): NeutralResponse => ({
  status,
  headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers },
  body,
});

const json = (status: number, value: unknown): NeutralResponse => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8' },
  body: JSON.stringify(value),
});

function count(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/**
 * A refusal: the connection is closed after the answer, so Node stops reading the request instead
 * of draining a body nobody will use (and the client cannot keep streaming into it).
 */
const refusal = (status: 401 | 403 | 413, body: string): NeutralResponse => text(status, body, { Connection: 'close' });

/** A Content-Length over the limit, read before any of the body is. */
function declaredTooLarge(headers: HeaderBag, limit: number): boolean {
  const declared = header(headers, 'content-length');
  return declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared) > limit;
}

/** The delivery headers of a target kind, built once: a name built per request costs a hash per lookup. */
function deliveryHeaders<P extends 'x-cloudtasks-' | 'x-appengine-'>(prefix: P) {
  return {
    eta: `${prefix}tasketa`,
    queueName: `${prefix}queuename`,
    taskName: `${prefix}taskname`,
    retryCount: `${prefix}taskretrycount`,
    executionCount: `${prefix}taskexecutioncount`,
  } as const;
}
const CLOUD_TASKS_HEADERS = deliveryHeaders('x-cloudtasks-');
const APP_ENGINE_HEADERS = deliveryHeaders('x-appengine-');

/** Reads the delivery headers of either target kind. */
export function deliveryFrom(headers: HeaderBag, body: Uint8Array, verified: boolean): Delivery {
  const appEngine = header(headers, 'x-appengine-taskname') !== undefined && header(headers, 'x-cloudtasks-taskname') === undefined;
  const names = appEngine ? APP_ENGINE_HEADERS : CLOUD_TASKS_HEADERS;
  const etaSeconds = Number(header(headers, names.eta));
  const queueName = header(headers, names.queueName);
  const cloudTaskName = header(headers, names.taskName);
  const trace = traceOf(headers);
  const traceHeaders: Record<string, string> = {};
  for (const name of TRACE_HEADERS) {
    const value = header(headers, name);
    if (value !== undefined) traceHeaders[name] = value;
  }
  // Field by field: conditional spreads cost a copy each, on every delivery.
  const delivery: Delivery = {
    body,
    targetKind: appEngine ? 'appEngine' : 'http',
    verified,
    retryCount: count(header(headers, names.retryCount)),
    executionCount: count(header(headers, names.executionCount)),
  };
  if (queueName) delivery.queueName = queueName;
  if (cloudTaskName) delivery.cloudTaskName = cloudTaskName;
  if (Number.isFinite(etaSeconds) && etaSeconds > 0) delivery.eta = Math.round(etaSeconds * 1000);
  if (trace) {
    delivery.trace = trace;
    delivery.traceHeaders = traceHeaders;
  }
  return delivery;
}

/**
 * The HTTP answer for an outcome. App Engine throttles a whole queue on 503, so retries there use
 * 408 (djangae's choice for SingularTaskFailure) or 500, and a busy lease 409.
 */
export function responseFor(outcome: DeliveryOutcome, targetKind: Delivery['targetKind']): NeutralResponse {
  const appEngine = targetKind === 'appEngine';
  switch (outcome.kind) {
    case 'succeeded':
      return text(200, 'OK');
    case 'duplicate':
      return text(200, `Already ${outcome.status}; not run again`);
    case 'failed':
      return text(200, `Failed permanently (${outcome.reason}); not retried`);
    case 'retry':
      return outcome.quiet ? text(appEngine ? 408 : 503, 'Retry requested') : text(500, 'Task failed; will be retried');
    case 'busy':
      return text(appEngine ? 409 : 503, 'Task is running elsewhere; retry later', { 'Retry-After': String(outcome.retryAfterSeconds) });
    case 'unavailable':
      return text(503, 'State store unavailable; retry later', { 'Retry-After': '5' });
    case 'refused':
      // Acknowledged so the queue drops it: no retry can make it agree with the record.
      return text(200, `Refused (${outcome.reason}); not run`);
  }
}

export class TaskHandler {
  constructor(private readonly settings: HandlerSettings) {}

  /** Whether this request is for a path the handler owns. */
  owns(path: string): boolean {
    return path === this.settings.handlerPath || path === this.settings.sweepPath;
  }

  async handle(request: NeutralRequest): Promise<NeutralResponse> {
    const { settings } = this;
    if (request.method !== 'POST') return text(405, 'Method Not Allowed', { Allow: 'POST' });
    if (settings.hostAllowed && !settings.hostAllowed(header(request.headers, 'host'))) {
      settings.logger.warn('refused a task request for another host (the embedded default serves this machine only)', {
        path: request.path,
        host: header(request.headers, 'host'),
      });
      return refusal(403, 'Forbidden');
    }
    // A check that throws refuses: an unproved request never reaches the engine.
    const auth = await settings.authenticator.authenticate(request).catch((err: unknown) => ({
      ok: false as const,
      status: 403 as const,
      reason: `authentication failed: ${err instanceof Error ? err.message : String(err)}`,
    }));
    if (!auth.ok) {
      settings.logger.warn('refused an unauthenticated task request', { path: request.path, reason: auth.reason, ...traceLogFields(request.headers) });
      return refusal(auth.status, auth.status === 401 ? 'Unauthorized' : 'Forbidden');
    }
    if (request.path === settings.sweepPath) {
      try {
        return json(200, await settings.engine.sweep());
      } catch (err) {
        return text(503, err instanceof Error ? err.message : String(err));
      }
    }
    if (declaredTooLarge(request.headers, settings.maxBodyBytes)) return refusal(413, `Request body over ${settings.maxBodyBytes} bytes.`);
    let body: Uint8Array;
    try {
      body = await request.readBody(settings.maxBodyBytes);
    } catch (err) {
      if (err instanceof CloudDeferError && err.code === 'PAYLOAD_TOO_LARGE') return refusal(413, err.message);
      return text(400, 'Could not read the request body');
    }
    const delivery = deliveryFrom(request.headers, body, auth.via !== 'none');
    return responseFor(await settings.engine.run(delivery), delivery.targetKind);
  }
}

/** Collects a request body into bytes, refusing more than `limit` (events, not an async iterator: cheaper per request). */
export function readStream(stream: Readable, limit: number): Promise<Uint8Array> {
  // A body parser mounted earlier may have consumed it already: nothing more will arrive.
  if (stream.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.byteLength;
      if (size > limit) {
        cleanup();
        // Stop reading: the 413 closes the connection, so the rest is never pulled off the wire.
        stream.pause();
        reject(new CloudDeferError('PAYLOAD_TOO_LARGE', `Request body over ${limit} bytes.`));
        return;
      }
      chunks.push(buf);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/** A body a parser already read (raw Buffer, text, or parsed JSON), or undefined to read the stream. */
export function alreadyParsedBody(body: unknown, limit: number): Uint8Array | undefined {
  let bytes: Uint8Array | undefined;
  if (body instanceof Uint8Array) bytes = body;
  else if (typeof body === 'string') bytes = Buffer.from(body);
  else if (body !== undefined && body !== null && typeof body === 'object' && Object.keys(body).length > 0) {
    bytes = Buffer.from(JSON.stringify(body));
  }
  if (bytes && bytes.byteLength > limit) throw new CloudDeferError('PAYLOAD_TOO_LARGE', `Request body over ${limit} bytes.`);
  return bytes;
}
