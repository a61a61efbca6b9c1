// The emulator's records as google.cloud.tasks.v2 messages, as GetQueue / GetTask report them.
import { STATUS_CODES } from 'node:http';
import { status } from '@grpc/grpc-js';
import type { AppEngineRouting } from './queue-config.js';
import type { AttemptRecord, QueueRecord, TaskRecord } from './model.js';
import {
  msToDuration,
  msToTimestamp,
  type AppEngineRoutingMessage,
  type AttemptMessage,
  type QueueMessage,
  type TaskMessage,
  type TaskViewName,
} from './proto-types.js';
import { DEFAULT_DISPATCH_DEADLINE_MS } from './task-input.js';

/** The host App Engine routing resolves to, as in AppEngineRouting.host. */
export function appEngineHost(project: string, routing: AppEngineRouting | null | undefined): string {
  // Domain-scoped projects ("example.com:app") are addressed with the domain after the app id.
  const [domainOrApp, app] = project.includes(':') ? project.split(':', 2) : [project, undefined];
  const appId = app ? `${app}.${domainOrApp}` : domainOrApp;
  const parts = [routing?.instance, routing?.version, routing?.service].filter((p): p is string => !!p);
  return [...parts, appId, 'appspot.com'].join('.');
}

function routingMessage(project: string, routing: AppEngineRouting | null | undefined): AppEngineRoutingMessage {
  return {
    service: routing?.service ?? '',
    version: routing?.version ?? '',
    instance: routing?.instance ?? '',
    host: appEngineHost(project, routing),
  };
}

export function queueToMessage(queue: QueueRecord): QueueMessage {
  const { rateLimits, retry } = queue.config;
  const message: QueueMessage = {
    name: queue.fullName,
    rateLimits: {
      maxDispatchesPerSecond: rateLimits.maxDispatchesPerSecond,
      maxBurstSize: queue.maxBurstSize,
      maxConcurrentDispatches: rateLimits.maxConcurrentDispatches,
    },
    retryConfig: {
      maxAttempts: retry.maxAttempts,
      maxRetryDuration: msToDuration(retry.maxRetryDurationMs),
      minBackoff: msToDuration(retry.minBackoffMs),
      maxBackoff: msToDuration(retry.maxBackoffMs),
      maxDoublings: retry.maxDoublings,
    },
    state: queue.state,
  };
  if (queue.config.appEngineRoutingOverride) {
    message.appEngineRoutingOverride = routingMessage(queue.name.project, queue.config.appEngineRoutingOverride);
  }
  if (queue.purgeTime !== undefined) message.purgeTime = msToTimestamp(queue.purgeTime);
  if (queue.config.loggingSamplingRatio !== undefined) {
    message.stackdriverLoggingConfig = { samplingRatio: queue.config.loggingSamplingRatio };
  }
  return message;
}

function attemptMessage(attempt: AttemptRecord): AttemptMessage {
  const message: AttemptMessage = {
    scheduleTime: msToTimestamp(attempt.scheduleTime),
    dispatchTime: msToTimestamp(attempt.dispatchTime),
  };
  if (attempt.responseTime !== undefined) {
    message.responseTime = msToTimestamp(attempt.responseTime);
    message.responseStatus = { code: attempt.statusCode ?? status.UNKNOWN, message: attempt.statusMessage ?? '' };
  }
  return message;
}

export function taskToMessage(task: TaskRecord, view: TaskViewName | undefined): TaskMessage {
  const full = view === 'FULL';
  const target = task.target;
  const message: TaskMessage = {
    name: `${task.queue.fullName}/tasks/${task.id}`,
    scheduleTime: msToTimestamp(task.dueAt),
    // create_time is truncated to the second.
    createTime: msToTimestamp(Math.floor(task.createTime / 1000) * 1000),
    dispatchCount: task.dispatchCount,
    responseCount: task.responseCount,
    view: full ? 'FULL' : 'BASIC',
  };
  if (task.dispatchDeadlineMs > 0) message.dispatchDeadline = msToDuration(task.dispatchDeadlineMs);
  if (task.firstDispatchTime >= 0) message.firstAttempt = { dispatchTime: msToTimestamp(task.firstDispatchTime) };
  if (task.lastAttempt) message.lastAttempt = attemptMessage(task.lastAttempt);

  if (target.kind === 'http') {
    message.httpRequest = {
      url: target.url,
      httpMethod: target.method,
      headers: { ...target.headers },
      ...(full && target.body ? { body: target.body } : {}),
      ...(target.oidc ? { oidcToken: { ...target.oidc } } : {}),
      ...(target.oauth ? { oauthToken: { ...target.oauth } } : {}),
    };
  } else {
    const routing = task.queue.config.appEngineRoutingOverride ?? target.routing;
    message.appEngineHttpRequest = {
      httpMethod: target.method,
      appEngineRouting: routingMessage(task.queue.name.project, routing),
      relativeUri: target.relativeUri,
      headers: { ...target.headers },
      ...(full && target.body ? { body: target.body } : {}),
    };
  }
  return message;
}

/** The deadline a dispatch of this task is held to. */
export function effectiveDeadlineMs(task: TaskRecord): number {
  return task.dispatchDeadlineMs > 0 ? task.dispatchDeadlineMs : DEFAULT_DISPATCH_DEADLINE_MS;
}

/** google.rpc.Code for an HTTP status, following Google's standard HTTP mapping. */
export function rpcCodeForHttpStatus(httpStatus: number): number {
  if (httpStatus >= 200 && httpStatus < 300) return status.OK;
  switch (httpStatus) {
    case 400:
      return status.INVALID_ARGUMENT;
    case 401:
      return status.UNAUTHENTICATED;
    case 403:
      return status.PERMISSION_DENIED;
    case 404:
      return status.NOT_FOUND;
    case 409:
      return status.ABORTED;
    case 416:
      return status.OUT_OF_RANGE;
    case 429:
      return status.RESOURCE_EXHAUSTED;
    case 499:
      return status.CANCELLED;
    case 501:
      return status.UNIMPLEMENTED;
    case 503:
      return status.UNAVAILABLE;
    case 504:
      return status.DEADLINE_EXCEEDED;
  }
  if (httpStatus >= 400 && httpStatus < 500) return status.FAILED_PRECONDITION;
  if (httpStatus >= 500 && httpStatus < 600) return status.INTERNAL;
  return status.UNKNOWN;
}

export function httpStatusText(httpStatus: number): string {
  return STATUS_CODES[httpStatus] ?? `HTTP ${httpStatus}`;
}
