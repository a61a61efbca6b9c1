// When a failed task is tried again, and when it is given up, following RetryConfig's documented rules.
import type { RetryPolicy } from './queue-config.js';

/**
 * Delay before the next attempt after `attemptsMade` attempts (>= 1) all failed: min_backoff doubled
 * max_doublings times, then growing linearly by 2^max_doublings x min_backoff, capped at
 * max_backoff. 10 s / 300 s / 3 doublings gives 10, 20, 40, 80, 160, 240, 300, 300 s.
 */
export function backoffDelayMs(policy: RetryPolicy, attemptsMade: number): number {
  const retryIndex = Math.max(0, attemptsMade - 1);
  const doublings = policy.maxDoublings;
  const delay = retryIndex <= doublings ? policy.minBackoffMs * 2 ** retryIndex : policy.minBackoffMs * 2 ** doublings * (1 + retryIndex - doublings);
  return Math.min(delay, policy.maxBackoffMs);
}

/**
 * A task is given up (deleted) once it has been attempted max_attempts times *and* max_retry_duration
 * has passed since its first attempt. An unlimited bound (-1 attempts, 0 duration) counts as met when
 * the other one is set; with both unlimited the task is retried forever.
 */
export function shouldGiveUp(policy: RetryPolicy, attemptsMade: number, firstAttemptAt: number, now: number): boolean {
  const attemptsLimited = policy.maxAttempts !== -1;
  const durationLimited = policy.maxRetryDurationMs > 0;
  if (!attemptsLimited && !durationLimited) return false;
  const attemptsReached = !attemptsLimited || attemptsMade >= policy.maxAttempts;
  const durationReached = !durationLimited || now - firstAttemptAt >= policy.maxRetryDurationMs;
  return attemptsReached && durationReached;
}

/** Reads a Retry-After header (delay in seconds, or an HTTP date) as a delay in ms from `now`. */
export function parseRetryAfterMs(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Responses that make Cloud Tasks back off harder: 429 and 503 (App Engine: 503 only). */
export function isThrottlingStatus(httpStatus: number, appEngine: boolean): boolean {
  return httpStatus === 503 || (httpStatus === 429 && !appEngine);
}

/** The delay after a failed attempt, with harder backoff on throttling and Retry-After honoured. */
export function retryDelayMs(policy: RetryPolicy, attemptsMade: number, throttled: boolean, retryAfterMs: number | undefined): number {
  let delay = backoffDelayMs(policy, attemptsMade);
  if (throttled) delay = Math.max(delay * 2, policy.minBackoffMs);
  if (retryAfterMs !== undefined) delay = Math.max(delay, retryAfterMs);
  return Math.min(delay, policy.maxBackoffMs);
}
