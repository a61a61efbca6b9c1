// Queue settings: Cloud Tasks' defaults and limits, validation, and UpdateQueue's field masks.
import { invalidArgument } from './errors.js';
import { durationToMs, type AppEngineRoutingMessage, type QueueMessage, type RateLimitsMessage, type RetryConfigMessage } from './proto-types.js';

export interface RateLimitsConfig {
  maxDispatchesPerSecond: number;
  maxConcurrentDispatches: number;
}

export interface RetryPolicy {
  /** Attempts in all, the first included; -1 = unlimited. */
  maxAttempts: number;
  /** Time limit for retrying, from the first attempt; 0 = unlimited. */
  maxRetryDurationMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxDoublings: number;
}

export interface AppEngineRouting {
  service: string;
  version: string;
  instance: string;
}

export interface QueueConfig {
  rateLimits: RateLimitsConfig;
  retry: RetryPolicy;
  appEngineRoutingOverride?: AppEngineRouting;
  loggingSamplingRatio?: number;
  /** queue.yaml's bucket_size; UpdateQueue resets it to the rate's derived burst, as Cloud Tasks does. */
  maxBurstSize?: number;
  /** How long finished task names stay taken on this queue (queue.yaml queues: about 9 days). */
  taskDedupWindowMs?: number;
}

export const MAX_DISPATCHES_PER_SECOND = 500;
export const MAX_CONCURRENT_DISPATCHES = 5000;

export const DEFAULT_RATE_LIMITS: Readonly<RateLimitsConfig> = {
  maxDispatchesPerSecond: 500,
  maxConcurrentDispatches: 1000,
};

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 100,
  maxRetryDurationMs: 0,
  minBackoffMs: 100,
  maxBackoffMs: 3_600_000,
  maxDoublings: 16,
};

/**
 * max_burst_size is output only and Cloud Tasks does not document how it derives it from the rate;
 * this rule gives 100 at the default (and maximum) rate of 500/s, and scales down with the rate.
 */
export function burstSizeFor(maxDispatchesPerSecond: number): number {
  return Math.max(1, Math.min(100, Math.ceil(maxDispatchesPerSecond / 5)));
}

export function defaultQueueConfig(): QueueConfig {
  return { rateLimits: { ...DEFAULT_RATE_LIMITS }, retry: { ...DEFAULT_RETRY_POLICY } };
}

// Proto3 cannot tell an unset number from zero: zero means "pick the default" unless a field mask
// names the field explicitly (then it is taken literally where zero makes sense).
function rateLimitsFrom(message: RateLimitsMessage | null | undefined): RateLimitsConfig {
  return {
    maxDispatchesPerSecond: message?.maxDispatchesPerSecond || DEFAULT_RATE_LIMITS.maxDispatchesPerSecond,
    maxConcurrentDispatches: message?.maxConcurrentDispatches || DEFAULT_RATE_LIMITS.maxConcurrentDispatches,
  };
}

function retryPolicyFrom(message: RetryConfigMessage | null | undefined): RetryPolicy {
  return {
    maxAttempts: message?.maxAttempts || DEFAULT_RETRY_POLICY.maxAttempts,
    maxRetryDurationMs: truncateToSecond(durationToMs(message?.maxRetryDuration) ?? DEFAULT_RETRY_POLICY.maxRetryDurationMs),
    minBackoffMs: durationToMs(message?.minBackoff) ?? DEFAULT_RETRY_POLICY.minBackoffMs,
    maxBackoffMs: durationToMs(message?.maxBackoff) ?? DEFAULT_RETRY_POLICY.maxBackoffMs,
    maxDoublings: message?.maxDoublings || DEFAULT_RETRY_POLICY.maxDoublings,
  };
}

function truncateToSecond(ms: number): number {
  return ms < 0 ? ms : Math.floor(ms / 1000) * 1000;
}

function routingFrom(message: AppEngineRoutingMessage | null | undefined): AppEngineRouting | undefined {
  if (!message) return undefined;
  const routing = { service: message.service ?? '', version: message.version ?? '', instance: message.instance ?? '' };
  return routing.service || routing.version || routing.instance ? routing : undefined;
}

/** The settings of a queue created from `message` (CreateQueue, or UpdateQueue creating one). */
export function queueConfigFrom(message: QueueMessage): QueueConfig {
  const config: QueueConfig = {
    rateLimits: rateLimitsFrom(message.rateLimits),
    retry: retryPolicyFrom(message.retryConfig),
  };
  const routing = routingFrom(message.appEngineRoutingOverride);
  if (routing) config.appEngineRoutingOverride = routing;
  if (message.stackdriverLoggingConfig) {
    config.loggingSamplingRatio = message.stackdriverLoggingConfig.samplingRatio ?? 0;
  }
  validateQueueConfig(config);
  return config;
}

// Output-only fields a mask may name: their values are ignored, as Cloud Tasks documents.
const OUTPUT_ONLY_PATHS = new Set(['name', 'state', 'purge_time', 'rate_limits.max_burst_size']);

function toSnakeCase(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Applies UpdateQueue's `queue` under `paths` (all fields when empty) to `current`. */
export function applyQueueUpdate(current: QueueConfig, message: QueueMessage, paths: readonly string[]): QueueConfig {
  if (paths.length === 0) {
    const replaced = queueConfigFrom(message);
    if (current.taskDedupWindowMs !== undefined) replaced.taskDedupWindowMs = current.taskDedupWindowMs;
    return replaced;
  }
  const { maxBurstSize: _resetByUpdate, ...kept } = current;
  const next: QueueConfig = {
    ...kept,
    rateLimits: { ...current.rateLimits },
    retry: { ...current.retry },
  };
  const rate = message.rateLimits;
  const retry = message.retryConfig;
  for (const rawPath of paths) {
    const path = toSnakeCase(rawPath.trim());
    if (OUTPUT_ONLY_PATHS.has(path)) continue;
    switch (path) {
      case 'rate_limits':
        next.rateLimits = rateLimitsFrom(rate);
        break;
      case 'rate_limits.max_dispatches_per_second':
        next.rateLimits.maxDispatchesPerSecond = rateLimitsFrom(rate).maxDispatchesPerSecond;
        break;
      case 'rate_limits.max_concurrent_dispatches':
        next.rateLimits.maxConcurrentDispatches = rateLimitsFrom(rate).maxConcurrentDispatches;
        break;
      case 'retry_config':
        next.retry = retryPolicyFrom(retry);
        break;
      case 'retry_config.max_attempts':
        next.retry.maxAttempts = retryPolicyFrom(retry).maxAttempts;
        break;
      case 'retry_config.max_retry_duration':
        next.retry.maxRetryDurationMs = retryPolicyFrom(retry).maxRetryDurationMs;
        break;
      case 'retry_config.min_backoff':
        next.retry.minBackoffMs = retryPolicyFrom(retry).minBackoffMs;
        break;
      case 'retry_config.max_backoff':
        next.retry.maxBackoffMs = retryPolicyFrom(retry).maxBackoffMs;
        break;
      case 'retry_config.max_doublings':
        next.retry.maxDoublings = retry?.maxDoublings ?? 0;
        break;
      case 'app_engine_routing_override': {
        const routing = routingFrom(message.appEngineRoutingOverride);
        if (routing) next.appEngineRoutingOverride = routing;
        else delete next.appEngineRoutingOverride;
        break;
      }
      case 'stackdriver_logging_config':
      case 'stackdriver_logging_config.sampling_ratio':
        if (message.stackdriverLoggingConfig) {
          next.loggingSamplingRatio = message.stackdriverLoggingConfig.samplingRatio ?? 0;
        } else {
          delete next.loggingSamplingRatio;
        }
        break;
      default:
        throw invalidArgument(`Invalid update_mask path "${rawPath}": the field does not exist or cannot be updated.`);
    }
  }
  validateQueueConfig(next);
  return next;
}

export function validateQueueConfig(config: QueueConfig): void {
  const { rateLimits, retry } = config;
  if (rateLimits.maxDispatchesPerSecond < 0) {
    throw invalidArgument('RateLimits.maxDispatchesPerSecond cannot be negative.');
  }
  if (rateLimits.maxDispatchesPerSecond > MAX_DISPATCHES_PER_SECOND) {
    throw invalidArgument(`RateLimits.maxDispatchesPerSecond must be less than or equal to ${MAX_DISPATCHES_PER_SECOND}.`);
  }
  if (rateLimits.maxConcurrentDispatches < 0) {
    throw invalidArgument('RateLimits.maxConcurrentDispatches cannot be negative.');
  }
  if (rateLimits.maxConcurrentDispatches > MAX_CONCURRENT_DISPATCHES) {
    throw invalidArgument(`RateLimits.maxConcurrentDispatches must be less than or equal to ${MAX_CONCURRENT_DISPATCHES}.`);
  }
  if (retry.maxAttempts < -1) throw invalidArgument('RetryConfig.maxAttempts must be greater or equal to -1.');
  if (retry.maxDoublings < 0) throw invalidArgument('RetryConfig.maxDoublings cannot be negative.');
  if (retry.minBackoffMs < 0) throw invalidArgument('RetryConfig.minBackoff cannot be negative.');
  if (retry.maxBackoffMs < 0) throw invalidArgument('RetryConfig.maxBackoff cannot be negative.');
  if (retry.maxRetryDurationMs < 0) throw invalidArgument('RetryConfig.maxRetryDuration cannot be negative.');
  if (retry.minBackoffMs > retry.maxBackoffMs) {
    throw invalidArgument('RetryConfig.minBackoff must be less than or equal to RetryConfig.maxBackoff.');
  }
  const ratio = config.loggingSamplingRatio;
  if (ratio !== undefined && !(ratio >= 0 && ratio <= 1)) {
    throw invalidArgument('StackdriverLoggingConfig.samplingRatio must be between 0.0 and 1.0.');
  }
}
