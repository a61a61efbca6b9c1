// The HTTP request Cloud Tasks sends for one attempt: target URL, the task's headers, and the
// X-CloudTasks-* / X-AppEngine-* headers describing the attempt, plus an OIDC token when asked.
import type { OutgoingHttpHeaders } from 'node:http';
import type { OutgoingAttempt } from './dispatcher.js';
import type { AttemptRecord, TaskRecord } from './model.js';
import { appEngineServiceAccountEmail, type OidcSigner } from './oidc.js';
import { effectiveDeadlineMs } from './convert.js';

export interface AttemptContext {
  /** Attempts made before this one (X-*-TaskRetryCount). */
  retryCount: number;
  previous: AttemptRecord | null;
  now: number;
  signer: OidcSigner;
  appEngineBaseUrl: URL | undefined;
}

/** seconds since the epoch with a microsecond fraction, as X-CloudTasks-TaskETA carries it. */
export function formatEta(ms: number): string {
  return (ms / 1000).toFixed(6);
}

function attemptHeaders(prefix: string, task: TaskRecord, context: AttemptContext): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    [`${prefix}-QueueName`]: task.queue.name.queueId,
    [`${prefix}-TaskName`]: task.id,
    [`${prefix}-TaskRetryCount`]: String(context.retryCount),
    // Recorded: App Engine counts every answered attempt (5xx included); HTTP targets exclude 5xx.
    [`${prefix}-TaskExecutionCount`]: String(prefix === 'X-AppEngine' ? task.responseCount : task.executionCount),
    [`${prefix}-TaskETA`]: formatEta(task.dueAt),
  };
  const previous = context.previous;
  if (previous?.httpStatus !== undefined) headers[`${prefix}-TaskPreviousResponse`] = String(previous.httpStatus);
  if (context.retryCount > 0 && previous?.failureReason !== undefined) {
    // Recorded: App Engine says "App Error" after an HTTP error; HTTP targets send the header empty.
    const answered = previous.httpStatus !== undefined;
    headers[`${prefix}-TaskRetryReason`] = answered && prefix === 'X-AppEngine' ? 'App Error' : previous.failureReason;
  }
  return headers;
}

// Cloud Tasks cannot mint a real Google access token here; the handler gets a recognisable stand-in.
function oauthStandIn(serviceAccountEmail: string, scope: string): string {
  return `emulator-oauth.${Buffer.from(`${serviceAccountEmail} ${scope}`).toString('base64url')}`;
}

/** The request for this attempt, or a reason it cannot be sent. */
export function buildAttemptRequest(task: TaskRecord, context: AttemptContext): OutgoingAttempt | string {
  const target = task.target;
  const deadlineMs = effectiveDeadlineMs(task);
  if (target.kind === 'http') {
    const headers: OutgoingHttpHeaders = { ...target.headers, ...attemptHeaders('X-CloudTasks', task, context) };
    if (target.oidc) {
      const audience = target.oidc.audience || target.url;
      headers['Authorization'] = `Bearer ${context.signer.sign(target.oidc.serviceAccountEmail, audience, context.now)}`;
    } else if (target.oauth) {
      headers['Authorization'] = `Bearer ${oauthStandIn(target.oauth.serviceAccountEmail, target.oauth.scope)}`;
    }
    return { url: new URL(target.url), method: target.method, headers, body: target.body, deadlineMs, followRedirects: true };
  }

  const base = context.appEngineBaseUrl;
  if (!base) return 'No App Engine base URL configured for the emulator (appEngineBaseUrl)';
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(target.headers)) {
    // Node computes Content-Length from the body it sends.
    if (name.toLowerCase() !== 'content-length') headers[name] = value;
  }
  Object.assign(headers, attemptHeaders('X-AppEngine', task, context));
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(`${base.origin}${basePath}${target.relativeUri}`);
  // Off App Engine nothing strips forged X-AppEngine-* headers, so the emulator proves its own
  // dispatch: an ID token for App Engine's default account, audience the URL it posts to (without the query).
  headers['Authorization'] =
    `Bearer ${context.signer.sign(appEngineServiceAccountEmail(task.queue.name.project), `${url.origin}${url.pathname}`, context.now)}`;
  return { url, method: target.method, headers, body: target.body, deadlineMs };
}
