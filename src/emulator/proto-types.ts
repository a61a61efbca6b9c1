// Shapes of the google.cloud.tasks.v2 messages as @grpc/proto-loader decodes them for this server
// (camelCase fields, enums as strings, 64-bit integers as numbers, bytes as Buffers, unset fields
// absent). Only the fields the emulator reads or writes are listed.

export interface DurationMessage {
  seconds?: number | string | null;
  nanos?: number | null;
}
export type TimestampMessage = DurationMessage;

export interface AppEngineRoutingMessage {
  service?: string;
  version?: string;
  instance?: string;
  host?: string;
}

export interface RateLimitsMessage {
  maxDispatchesPerSecond?: number;
  maxBurstSize?: number;
  maxConcurrentDispatches?: number;
}

export interface RetryConfigMessage {
  maxAttempts?: number;
  maxRetryDuration?: DurationMessage | null;
  minBackoff?: DurationMessage | null;
  maxBackoff?: DurationMessage | null;
  maxDoublings?: number;
}

export interface StackdriverLoggingConfigMessage {
  samplingRatio?: number;
}

export type QueueStateName = 'STATE_UNSPECIFIED' | 'RUNNING' | 'PAUSED' | 'DISABLED';

export interface QueueMessage {
  name?: string;
  appEngineRoutingOverride?: AppEngineRoutingMessage | null;
  rateLimits?: RateLimitsMessage | null;
  retryConfig?: RetryConfigMessage | null;
  state?: QueueStateName;
  purgeTime?: TimestampMessage | null;
  stackdriverLoggingConfig?: StackdriverLoggingConfigMessage | null;
}

export type HttpMethodName = 'HTTP_METHOD_UNSPECIFIED' | 'POST' | 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';

export interface OidcTokenMessage {
  serviceAccountEmail?: string;
  audience?: string;
}

export interface OAuthTokenMessage {
  serviceAccountEmail?: string;
  scope?: string;
}

export interface HttpRequestMessage {
  url?: string;
  httpMethod?: HttpMethodName;
  headers?: Record<string, string>;
  body?: Buffer;
  oauthToken?: OAuthTokenMessage | null;
  oidcToken?: OidcTokenMessage | null;
}

export interface AppEngineHttpRequestMessage {
  httpMethod?: HttpMethodName;
  appEngineRouting?: AppEngineRoutingMessage | null;
  relativeUri?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface StatusMessage {
  code: number;
  message: string;
}

export interface AttemptMessage {
  scheduleTime?: TimestampMessage;
  dispatchTime?: TimestampMessage;
  responseTime?: TimestampMessage;
  responseStatus?: StatusMessage;
}

export type TaskViewName = 'VIEW_UNSPECIFIED' | 'BASIC' | 'FULL';

export interface TaskMessage {
  name?: string;
  appEngineHttpRequest?: AppEngineHttpRequestMessage | null;
  httpRequest?: HttpRequestMessage | null;
  scheduleTime?: TimestampMessage | null;
  createTime?: TimestampMessage | null;
  dispatchDeadline?: DurationMessage | null;
  dispatchCount?: number;
  responseCount?: number;
  firstAttempt?: AttemptMessage | null;
  lastAttempt?: AttemptMessage | null;
  view?: TaskViewName;
}

export interface FieldMaskMessage {
  paths?: string[];
}

const NANOS_PER_MS = 1_000_000;

export function durationToMs(value: DurationMessage | null | undefined): number | undefined {
  if (!value) return undefined;
  return Number(value.seconds ?? 0) * 1000 + Math.trunc((value.nanos ?? 0) / NANOS_PER_MS);
}
/** A timestamp as ms since the epoch, keeping microseconds (as Cloud Tasks keeps them) in the fraction. */
export function timestampToMs(value: TimestampMessage | null | undefined): number | undefined {
  if (!value) return undefined;
  return Number(value.seconds ?? 0) * 1000 + Math.trunc((value.nanos ?? 0) / 1000) / 1000;
}

export function msToDuration(ms: number): DurationMessage {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * NANOS_PER_MS) };
}
export function msToTimestamp(ms: number): TimestampMessage {
  let seconds = Math.floor(ms / 1000);
  let micros = Math.round((ms - seconds * 1000) * 1000);
  if (micros >= 1_000_000) {
    seconds += 1;
    micros -= 1_000_000;
  }
  return { seconds, nanos: micros * 1000 };
}
