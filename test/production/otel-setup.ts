/**
 * The OpenTelemetry SDK wired as an app would (global tracer provider and AsyncLocalStorage
 * context manager), with an in-memory exporter so tests can read the finished spans.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';

export interface TracingHarness {
  exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  stop(): Promise<void>;
}

export function startTracing(): TracingHarness {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager) || !trace.setGlobalTracerProvider(provider)) {
    throw new Error('another test left a global OpenTelemetry provider registered');
  }
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    async stop() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** A pull reader: collect() returns what the SDK aggregated so far. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface MetricsHarness {
  meterProvider: MeterProvider;
  /** Sum of a counter's points whose attributes include `where`. */
  counter(name: string, where: Record<string, string>): Promise<number>;
  /** Number of values a histogram recorded for `where`. */
  histogramCount(name: string, where: Record<string, string>): Promise<number>;
}

export function startMetrics(): MetricsHarness {
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const points = async (name: string, where: Record<string, string>): Promise<Array<DataPoint<unknown>>> => {
    const { resourceMetrics } = await reader.collect();
    const found: Array<DataPoint<unknown>> = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== name) continue;
        for (const point of metric.dataPoints as Array<DataPoint<unknown>>) {
          if (Object.entries(where).every(([k, v]) => point.attributes[k] === v)) found.push(point);
        }
      }
    }
    return found;
  };
  return {
    meterProvider,
    counter: async (name, where) => (await points(name, where)).reduce((sum, p) => sum + (p.value as number), 0),
    histogramCount: async (name, where) => (await points(name, where)).reduce((sum, p) => sum + (p.value as Histogram).count, 0),
  };
}
