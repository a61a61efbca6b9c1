// CreateTask's task message, validated and turned into the emulator's target spec, with the headers
// Cloud Tasks stores alongside (User-Agent, and for App Engine Content-Type and Content-Length).
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { copyBody } from './body-copy.js';
import { invalidArgument } from './errors.js';
import type { AppEngineTargetSpec, HttpTargetSpec, TargetSpec } from './model.js';
import {
  durationToMs,
  timestampToMs,
  type AppEngineHttpRequestMessage,
  type HttpMethodName,
  type HttpRequestMessage,
  type TaskMessage,
} from './proto-types.js';

export const HTTP_USER_AGENT = 'Google-Cloud-Tasks';
export const APP_ENGINE_USER_AGENT = 'AppEngine-Google; (+http://code.google.com/appengine)';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const DEFAULT_DISPATCH_DEADLINE_MS = 10 * MINUTE;
const HTTP_DEADLINE_RANGE = { min: 15 * SECOND, max: 30 * MINUTE };
const APP_ENGINE_DEADLINE_RANGE = { min: 15 * SECOND, max: 24 * HOUR + 15 * SECOND };
export const MAX_SCHEDULE_AHEAD_MS = 30 * DAY;
const MAX_URL_LENGTH = 2083;
const MAX_HEADERS_BYTES = 80 * 1024;

export interface TaskInput {
  target: TargetSpec;
  scheduleTime: number;
  /** 0 = App Engine's default deadline. */
  dispatchDeadlineMs: number;
}

function methodOf(method: HttpMethodName | undefined): HttpMethodName {
  return !method || method === 'HTTP_METHOD_UNSPECIFIED' ? 'POST' : method;
}

function bodyOf(body: Buffer | undefined): Buffer | null {
  return body && body.length > 0 ? copyBody(body) : null;
}

function isReservedHeader(lowerName: string): boolean {
  return lowerName === 'host' || lowerName === 'content-length' || lowerName.startsWith('x-google-') || lowerName.startsWith('x-appengine-');
}

/** Refuses what could not go on the wire, and headers over Cloud Tasks' 80 KB. */
function validateHeaders(headers: Record<string, string>, field: string): void {
  let total = 0;
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw invalidArgument(`${field} has an invalid header: "${name}".`);
    }
    total += name.length + value.length + 4;
  }
  if (total >= MAX_HEADERS_BYTES) throw invalidArgument(`${field} must be smaller than 80KB.`);
}

function httpTargetFrom(message: HttpRequestMessage): HttpTargetSpec {
  const url = message.url ?? '';
  if (!url) throw invalidArgument('HttpRequest.url is required.');
  if (!/^https?:\/\//i.test(url)) throw invalidArgument("HttpTarget.url must start with 'http://' or 'https://'.");
  if (url.length > MAX_URL_LENGTH) {
    throw invalidArgument(`HttpRequest.url must be at most ${MAX_URL_LENGTH} characters.`);
  }
  try {
    new URL(url);
  } catch {
    throw invalidArgument(`HttpRequest.url "${url}" is not a valid URL.`);
  }
  const method = methodOf(message.httpMethod);
  const body = bodyOf(message.body);
  if (body && method !== 'POST' && method !== 'PUT' && method !== 'PATCH') {
    throw invalidArgument('HttpRequest.body is allowed only for POST, PUT and PATCH requests.');
  }
  const oidc = message.oidcToken ?? null;
  const oauth = message.oauthToken ?? null;
  if (oidc && !oidc.serviceAccountEmail) throw invalidArgument('OidcToken.serviceAccountEmail is required.');
  if (oauth && !oauth.serviceAccountEmail) throw invalidArgument('OAuthToken.serviceAccountEmail is required.');

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const lower = name.toLowerCase();
    if (isReservedHeader(lower) || lower === 'user-agent') continue;
    // A generated token overrides any Authorization header given.
    if ((oidc || oauth) && lower === 'authorization') continue;
    headers[name] = value;
  }
  headers['User-Agent'] = HTTP_USER_AGENT;
  validateHeaders(headers, 'HttpRequest.headers');

  return {
    kind: 'http',
    url,
    method,
    headers,
    body,
    oidc: oidc ? { serviceAccountEmail: oidc.serviceAccountEmail!, audience: oidc.audience ?? '' } : null,
    oauth: oauth
      ? {
          serviceAccountEmail: oauth.serviceAccountEmail!,
          scope: oauth.scope || 'https://www.googleapis.com/auth/cloud-platform',
        }
      : null,
  };
}

function appEngineTargetFrom(message: AppEngineHttpRequestMessage): AppEngineTargetSpec {
  const relativeUri = message.relativeUri || '/';
  if (!relativeUri.startsWith('/')) throw invalidArgument('AppEngineHttpRequest.relativeUri must begin with "/".');
  if (/\s/.test(relativeUri)) throw invalidArgument('AppEngineHttpRequest.relativeUri must not contain spaces.');
  if (relativeUri.length > MAX_URL_LENGTH) {
    throw invalidArgument(`AppEngineHttpRequest.relativeUri must be at most ${MAX_URL_LENGTH} characters.`);
  }
  const method = methodOf(message.httpMethod);
  const body = bodyOf(message.body);
  if (body && method !== 'POST' && method !== 'PUT') {
    throw invalidArgument('AppEngineHttpRequest.body is allowed only for POST and PUT requests.');
  }

  const headers: Record<string, string> = {};
  let userAgent = '';
  let hasContentType = false;
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const lower = name.toLowerCase();
    if (isReservedHeader(lower)) continue;
    if (lower === 'user-agent') {
      userAgent = value;
      continue;
    }
    if (lower === 'content-type') hasContentType = true;
    headers[name] = value;
  }
  headers['User-Agent'] = userAgent ? `${userAgent} ${APP_ENGINE_USER_AGENT}` : APP_ENGINE_USER_AGENT;
  if (body) {
    if (!hasContentType) headers['Content-Type'] = 'application/octet-stream';
    headers['Content-Length'] = String(body.length);
  }
  validateHeaders(headers, 'AppEngineHttpRequest.headers');

  const routing = message.appEngineRouting;
  return {
    kind: 'appEngine',
    method,
    relativeUri,
    routing:
      routing && (routing.service || routing.version || routing.instance)
        ? { service: routing.service ?? '', version: routing.version ?? '', instance: routing.instance ?? '' }
        : null,
    headers,
    body,
  };
}

function dispatchDeadlineFrom(message: TaskMessage, appEngine: boolean): number {
  const requested = durationToMs(message.dispatchDeadline) ?? 0;
  if (requested === 0) return appEngine ? 0 : DEFAULT_DISPATCH_DEADLINE_MS;
  const range = appEngine ? APP_ENGINE_DEADLINE_RANGE : HTTP_DEADLINE_RANGE;
  if (requested < range.min || requested > range.max) {
    throw invalidArgument(
      appEngine
        ? 'Task.dispatchDeadline must be between 15 seconds and 24 hours 15 seconds for App Engine tasks.'
        : 'Task.dispatchDeadline must be between 15 seconds and 30 minutes for HTTP tasks.',
    );
  }
  return requested;
}

/** Validates CreateTask's task (all but its name) and returns what the emulator keeps of it. */
export function taskInputFrom(message: TaskMessage, now: number): TaskInput {
  let target: TargetSpec;
  if (message.httpRequest) target = httpTargetFrom(message.httpRequest);
  else if (message.appEngineHttpRequest) target = appEngineTargetFrom(message.appEngineHttpRequest);
  else throw invalidArgument('Task.message_type must be set: give an http_request or an app_engine_http_request.');

  const dispatchDeadlineMs = dispatchDeadlineFrom(message, target.kind === 'appEngine');

  const requestedSchedule = timestampToMs(message.scheduleTime);
  if (requestedSchedule !== undefined && requestedSchedule - now > MAX_SCHEDULE_AHEAD_MS) {
    throw invalidArgument('Task.scheduleTime must be at most 30 days in the future.');
  }
  const scheduleTime = requestedSchedule === undefined || requestedSchedule < now ? now : requestedSchedule;
  return { target, scheduleTime, dispatchDeadlineMs };
}
