/**
 * What the core tells a tracing/metrics integration (src/otel implements it over
 * @opentelemetry/api, loaded only when present). The core never imports OpenTelemetry itself.
 */

/** The trace a delivery's request carried (traceparent or X-Cloud-Trace-Context). */
export interface DeliveryTrace {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId?: string;
  sampled?: boolean;
}

export interface TaskLabels {
  taskName: string;
  queue: string;
}

export interface RunLabels extends TaskLabels {
  taskId: string;
  attempt: number;
}

export type RunOutcome = 'succeeded' | 'failed' | 'retried';

export interface TaskTelemetry {
  /**
   * Wraps one defer: `inject` adds the propagation headers (traceparent, tracestate,
   * X-Cloud-Trace-Context) of the defer's span to the Cloud Task.
   */
  deferSpan<T>(labels: TaskLabels, work: (inject: (headers: Record<string, string>) => void) => Promise<T>): Promise<T>;
  /** A defer that reached the queue. */
  deferred(labels: TaskLabels): void;
  /** Wraps one delivery; the span continues the trace in the request's headers. */
  deliverySpan<T>(headers: Record<string, string>, work: (name: (labels: RunLabels) => void) => Promise<T>): Promise<T>;
  /** Wraps the task function's run, inside the delivery span. */
  runSpan<T>(labels: RunLabels, work: () => Promise<T>): Promise<T>;
  /** One run finished, with its duration. */
  ran(labels: RunLabels, outcome: RunOutcome, durationMs: number): void;
}

/** Headers a delivery keeps for tracing (lower-case names). */
export const TRACE_HEADERS = ['traceparent', 'tracestate', 'x-cloud-trace-context'] as const;
