/** Reads the trace a request carries: W3C traceparent first, else Google's X-Cloud-Trace-Context. */
import type { DeliveryTrace } from '../core/telemetry.js';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
// TRACE_ID/SPAN_ID;o=1 with the span id in decimal.
const CLOUD_TRACE = /^([0-9a-fA-F]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?$/;
const INVALID_TRACE = '0'.repeat(32);
const INVALID_SPAN = '0'.repeat(16);

export function parseTraceparent(value: string | undefined): DeliveryTrace | undefined {
  const match = value ? TRACEPARENT.exec(value.trim().toLowerCase()) : null;
  if (!match || match[1] === 'ff' || match[2] === INVALID_TRACE || match[3] === INVALID_SPAN) return undefined;
  return { traceId: match[2]!, spanId: match[3]!, sampled: (parseInt(match[4]!, 16) & 1) === 1 };
}

export function parseCloudTraceContext(value: string | undefined): DeliveryTrace | undefined {
  const match = value ? CLOUD_TRACE.exec(value.trim()) : null;
  if (!match || match[1]!.toLowerCase() === INVALID_TRACE) return undefined;
  const trace: DeliveryTrace = { traceId: match[1]!.toLowerCase() };
  if (match[2] !== undefined) {
    const span = BigInt(match[2]);
    if (span > 0n && span < 1n << 64n) trace.spanId = span.toString(16).padStart(16, '0');
  }
  if (match[3] !== undefined) trace.sampled = match[3] === '1';
  return trace;
}

/** `headers` with lower-case names, as node:http gives them. */
export function traceOf(headers: Record<string, string | string[] | undefined>): DeliveryTrace | undefined {
  const first = (name: string): string | undefined => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return parseTraceparent(first('traceparent')) ?? parseCloudTraceContext(first('x-cloud-trace-context'));
}

/** X-Cloud-Trace-Context for a span (its span id in decimal). */
export function cloudTraceContext(traceId: string, spanId: string, sampled: boolean): string {
  return `${traceId}/${BigInt(`0x${spanId}`).toString(10)};o=${sampled ? 1 : 0}`;
}

/** The log fields for a request's trace (the Cloud Logging logger turns them into its trace fields). */
export function traceLogFields(headers: Record<string, string | string[] | undefined>): { traceId?: string; spanId?: string; traceSampled?: boolean } {
  const trace = traceOf(headers);
  if (!trace) return {};
  return { traceId: trace.traceId, ...(trace.spanId ? { spanId: trace.spanId } : {}), ...(trace.sampled !== undefined ? { traceSampled: trace.sampled } : {}) };
}
