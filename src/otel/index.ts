/**
 * OpenTelemetry integration: spans from defer to run, and task metrics. @opentelemetry/api is an
 * optional peer dependency, loaded here on first use; when it is missing, openTelemetry() answers
 * undefined and the engine runs with no telemetry hooks at all.
 */
import type { RunLabels, RunOutcome, TaskLabels, TaskTelemetry } from '../core/telemetry.js';
import { cloudTraceContext, parseCloudTraceContext, parseTraceparent } from '../logging/trace-header.js';

type Api = typeof import('@opentelemetry/api');
type Context = import('@opentelemetry/api').Context;
type Span = import('@opentelemetry/api').Span;
type Tracer = import('@opentelemetry/api').Tracer;
type Meter = import('@opentelemetry/api').Meter;
type Counter = import('@opentelemetry/api').Counter;
type Histogram = import('@opentelemetry/api').Histogram;

/** Structural, so that these options do not make @opentelemetry/api a type dependency. */
export interface OpenTelemetryOptions {
  /** Default: the global tracer provider. */
  tracerProvider?: { getTracer(name: string, version?: string): unknown };
  /** Default: the global meter provider (looked up again if it changes, as an SDK may register late). */
  meterProvider?: { getMeter(name: string, version?: string): unknown };
}

const INSTRUMENTATION = 'cloud-defer';

let loaded: Api | null | undefined;

/** @opentelemetry/api, or null when it is not installed. Tried once. */
function loadApi(): Api | null {
  if (loaded === undefined) {
    try {
      loaded = require('@opentelemetry/api') as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** Whether @opentelemetry/api can be loaded in this process. */
export function openTelemetryAvailable(): boolean {
  return loadApi() !== null;
}

export const ATTR = {
  taskId: 'cloud_defer.task.id',
  taskName: 'cloud_defer.task.name',
  queue: 'cloud_defer.queue',
  attempt: 'cloud_defer.attempt',
  outcome: 'cloud_defer.outcome',
} as const;

export const METRICS = {
  deferred: 'cloud_defer.tasks.deferred',
  runs: 'cloud_defer.tasks.runs',
  succeeded: 'cloud_defer.tasks.succeeded',
  failed: 'cloud_defer.tasks.failed',
  retried: 'cloud_defer.tasks.retried',
  duration: 'cloud_defer.task.duration',
} as const;

interface Instruments {
  provider: unknown;
  noop: boolean;
  deferred: Counter;
  runs: Counter;
  succeeded: Counter;
  failed: Counter;
  retried: Counter;
  duration: Histogram;
}

/** What a no-op provider makes no-op: nothing to record and no context to carry (see `traced`). */
const untraced = (): void => undefined;

class OpenTelemetryHooks implements TaskTelemetry {
  private tracerCache?: Tracer;
  private tracerProvider?: unknown;
  private instruments?: Instruments;
  /** The global proxy's delegate last seen, and whether it was a real (SDK) provider. */
  private seenDelegate?: unknown;
  private delegateTraces = false;

  constructor(
    private readonly api: Api,
    private readonly options: OpenTelemetryOptions,
  ) {
    this.probe = api.ROOT_CONTEXT.setValue(Symbol('cloud-defer context probe'), true);
  }

  private tracer(): Tracer {
    // Looked up per call: trace.disable() (tests, SDK shutdown) replaces the global proxy.
    const provider = this.options.tracerProvider ?? this.api.trace.getTracerProvider();
    if (this.tracerCache === undefined || this.tracerProvider !== provider) {
      this.tracerProvider = provider;
      this.tracerCache = provider.getTracer(INSTRUMENTATION) as Tracer;
    }
    return this.tracerCache;
  }

  /**
   * Whether spans could be seen by anyone. With no tracer provider registered (the API alone, as
   * when a dependency installs it) and no context manager, every span is a non-recording no-op that
   * no code can observe, so the hooks skip them: no span, context or attribute objects per task.
   * Checked per call through the public API (an SDK may register after the engine was built), and
   * the delegate's answer is remembered until the delegate changes.
   */
  private traced(): boolean {
    const { api } = this;
    if (this.options.tracerProvider) return true;
    const provider = api.trace.getTracerProvider();
    if (provider instanceof api.ProxyTracerProvider) {
      const delegate = provider.getDelegate();
      if (delegate !== this.seenDelegate) {
        this.seenDelegate = delegate;
        this.delegateTraces = provider.getDelegateTracer(INSTRUMENTATION) !== undefined;
      }
      if (this.delegateTraces) return true;
    } else {
      return true;
    }
    // No tracer: spans are no-ops, but a registered context manager still carries a remote parent
    // to the task's code (trace.getActiveSpan()), so keep the full path then.
    return this.hasContextManager();
  }

  /** Made once: a context that only this probe ever makes active. */
  private readonly probe: Context;
  private readonly probeIsActive = (): boolean => this.api.context.active() === this.probe;

  /** A registered context manager makes active() answer the context given to with(); the no-op one never does. */
  private hasContextManager(): boolean {
    return this.api.context.with(this.probe, this.probeIsActive);
  }

  private metrics(): Instruments {
    const provider = this.options.meterProvider ?? this.api.metrics.getMeterProvider();
    if (this.instruments?.provider === provider) return this.instruments;
    const meter = provider.getMeter(INSTRUMENTATION) as Meter;
    this.instruments = {
      provider,
      // The API's no-op meter (no SDK registered) records nothing: skip building attributes for it.
      noop: meter === this.api.createNoopMeter(),
      deferred: meter.createCounter(METRICS.deferred, { description: 'Tasks deferred (enqueued or staged in a transaction)' }),
      runs: meter.createCounter(METRICS.runs, { description: 'Task runs, any outcome' }),
      succeeded: meter.createCounter(METRICS.succeeded, { description: 'Task runs that succeeded' }),
      failed: meter.createCounter(METRICS.failed, { description: 'Task runs recorded failed (not retried)' }),
      retried: meter.createCounter(METRICS.retried, { description: 'Task runs that failed and were left to the queue to retry' }),
      duration: meter.createHistogram(METRICS.duration, { description: 'Duration of task runs', unit: 'ms' }),
    };
    return this.instruments;
  }

  private async inSpan<T>(span: Span, work: () => Promise<T>): Promise<T> {
    const { SpanStatusCode } = this.api;
    try {
      const result = await work();
      const kind = (result as { kind?: unknown } | null)?.kind;
      if (typeof kind === 'string') span.setAttribute(ATTR.outcome, kind);
      return result;
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  }

  deferSpan<T>(labels: TaskLabels, work: (inject: (headers: Record<string, string>) => void) => Promise<T>): Promise<T> {
    const { api } = this;
    if (!this.traced()) return work(untraced);
    const span = this.tracer().startSpan(`defer ${labels.taskName}`, {
      kind: api.SpanKind.PRODUCER,
      attributes: { [ATTR.taskName]: labels.taskName, [ATTR.queue]: labels.queue },
    });
    const ctx = api.trace.setSpan(api.context.active(), span);
    return api.context.with(ctx, () => this.inSpan(span, () => work((headers) => this.inject(ctx, headers))));
  }

  private inject(ctx: Context, headers: Record<string, string>): void {
    const { api } = this;
    api.propagation.inject(ctx, headers);
    const spanContext = api.trace.getSpanContext(ctx);
    if (!spanContext || !api.isSpanContextValid(spanContext)) return;
    const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
    // Written here too, so propagation works with no propagator registered (the API's default is a no-op).
    headers.traceparent ??= `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
    if (spanContext.traceState && headers.tracestate === undefined) headers.tracestate = spanContext.traceState.serialize();
    headers['X-Cloud-Trace-Context'] = cloudTraceContext(spanContext.traceId, spanContext.spanId, (spanContext.traceFlags & 1) === 1);
  }

  /** The parent for a delivery: an active span (HTTP instrumentation), else the request's headers. */
  private parentOf(headers: Record<string, string>): Context {
    const { api } = this;
    const active = api.context.active();
    const current = api.trace.getSpanContext(active);
    if (current && api.isSpanContextValid(current)) return active;
    const extracted = api.propagation.extract(api.ROOT_CONTEXT, headers);
    const fromPropagator = api.trace.getSpanContext(extracted);
    if (fromPropagator && api.isSpanContextValid(fromPropagator)) return extracted;
    const parsed = parseTraceparent(headers.traceparent) ?? parseCloudTraceContext(headers['x-cloud-trace-context']);
    if (!parsed?.spanId) return active;
    const traceState = headers.tracestate ? api.createTraceState(headers.tracestate) : undefined;
    return api.trace.setSpanContext(api.ROOT_CONTEXT, {
      traceId: parsed.traceId,
      spanId: parsed.spanId,
      traceFlags: parsed.sampled === false ? api.TraceFlags.NONE : api.TraceFlags.SAMPLED,
      isRemote: true,
      ...(traceState ? { traceState } : {}),
    });
  }

  deliverySpan<T>(headers: Record<string, string>, work: (name: (labels: RunLabels) => void) => Promise<T>): Promise<T> {
    const { api } = this;
    if (!this.traced()) return work(untraced);
    const parent = this.parentOf(headers);
    const span = this.tracer().startSpan('deliver', { kind: api.SpanKind.CONSUMER }, parent);
    const name = (labels: RunLabels): void => {
      span.updateName(`deliver ${labels.taskName}`);
      span.setAttributes(attributesOf(labels));
    };
    return api.context.with(api.trace.setSpan(parent, span), () => this.inSpan(span, () => work(name)));
  }

  runSpan<T>(labels: RunLabels, work: () => Promise<T>): Promise<T> {
    const { api } = this;
    if (!this.traced()) return work();
    const span = this.tracer().startSpan(`run ${labels.taskName}`, { kind: api.SpanKind.INTERNAL, attributes: attributesOf(labels) });
    return api.context.with(api.trace.setSpan(api.context.active(), span), () => this.inSpan(span, work));
  }

  deferred(labels: TaskLabels): void {
    const instruments = this.metrics();
    if (!instruments.noop) instruments.deferred.add(1, metricAttributes(labels));
  }

  ran(labels: RunLabels, outcome: RunOutcome, durationMs: number): void {
    const instruments = this.metrics();
    if (instruments.noop) return;
    const attributes = metricAttributes(labels);
    instruments.runs.add(1, { ...attributes, [ATTR.outcome]: outcome });
    instruments[outcome].add(1, attributes);
    instruments.duration.record(durationMs, { ...attributes, [ATTR.outcome]: outcome });
  }
}

function attributesOf(labels: RunLabels): Record<string, string | number> {
  return { [ATTR.taskId]: labels.taskId, [ATTR.taskName]: labels.taskName, [ATTR.queue]: labels.queue, [ATTR.attempt]: labels.attempt };
}

/** Task ids stay out of metrics: one series per task would explode their cardinality. */
function metricAttributes(labels: TaskLabels): Record<string, string> {
  return { [ATTR.taskName]: labels.taskName, [ATTR.queue]: labels.queue };
}

/** The telemetry hooks over @opentelemetry/api, or undefined when it is not installed. */
export function openTelemetry(options: OpenTelemetryOptions = {}): TaskTelemetry | undefined {
  const api = loadApi();
  return api ? new OpenTelemetryHooks(api, options) : undefined;
}
