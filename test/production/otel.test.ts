/**
 * Traces from defer to run and task metrics with the real OpenTelemetry SDK (in-memory exporter,
 * pull metric reader), over real HTTP deliveries from the embedded Cloud Tasks emulator.
 */
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { cloudLoggingLogger, openTelemetry } from '../../src/index.js';
import { createEmulatorClient } from '../../src/emulator/index.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { startMetrics, startTracing, type TracingHarness } from './otel-setup.js';

const QUEUE_PARENT = 'projects/local-project/locations/us-central1/queues';

function byName(spans: ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name);
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('OpenTelemetry: traces from defer to run', () => {
  let tracing: TracingHarness;
  let app: TestApp;
  const seenInTask: Array<{ traceId?: string; spanId?: string }> = [];
  let flakyFailures = 0;
  const logLines: string[] = [];

  before(async () => {
    tracing = startTracing();
    app = await startApp(
      'express',
      { logger: cloudLoggingLogger({ projectId: 'trace-project', write: (line) => logLines.push(line) }), queues: [{ name: 'mail' }] },
      (deferred) => {
        deferred.task(
          'sendEmail',
          (_to: string) => {
            const context = trace.getActiveSpan()?.spanContext();
            seenInTask.push({ traceId: context?.traceId, spanId: context?.spanId });
          },
          { queue: 'mail' },
        );
        deferred.task('flaky', () => {
          if (flakyFailures-- > 0) throw new Error('upstream 502');
        });
      },
    );
  });
  after(async () => {
    await app.close();
    await tracing.stop();
  });
  beforeEach(() => {
    tracing.exporter.reset();
    seenInTask.length = 0;
    logLines.length = 0;
  });

  it('request span -> defer span -> delivery span -> task span, one trace id, over real HTTP', async () => {
    const tracer = trace.getTracer('test-app');
    const info = await tracer.startActiveSpan('POST /signup', async (span) => {
      try {
        return await app.deferred.defer('sendEmail', ['ada@example.com']);
      } finally {
        span.end();
      }
    });
    await info.wait({ timeoutMs: 10_000 });
    await app.deferred.drain();
    const spans = tracing.spans();
    const [request] = byName(spans, 'POST /signup');
    const [defer] = byName(spans, 'defer sendEmail');
    const [delivery] = byName(spans, 'deliver sendEmail');
    const [run] = byName(spans, 'run sendEmail');
    assert.ok(request && defer && delivery && run, spans.map((s) => s.name).join(', '));
    const traceId = request.spanContext().traceId;
    for (const span of [defer, delivery, run]) assert.equal(span.spanContext().traceId, traceId, span.name);
    assert.equal(parentOf(defer), request.spanContext().spanId);
    assert.equal(parentOf(delivery), defer.spanContext().spanId, 'the delivery continues the defer across HTTP');
    assert.equal(delivery.parentSpanContext?.isRemote, true);
    assert.equal(parentOf(run), delivery.spanContext().spanId);
    assert.equal(defer.kind, SpanKind.PRODUCER);
    assert.equal(delivery.kind, SpanKind.CONSUMER);
    assert.deepEqual(run.attributes, {
      'cloud_defer.task.id': info.id,
      'cloud_defer.task.name': 'sendEmail',
      'cloud_defer.queue': 'mail',
      'cloud_defer.attempt': 0,
    });
    assert.equal(delivery.attributes['cloud_defer.outcome'], 'succeeded');
    // The task's own code runs inside the task span (its spans and logs join the trace).
    assert.deepEqual(seenInTask, [{ traceId, spanId: run.spanContext().spanId }]);
  });

  it('the Cloud Task carries traceparent and X-Cloud-Trace-Context of the defer span', async () => {
    const client = createEmulatorClient(app.deferred.emulator!);
    await client.pauseQueue({ name: `${QUEUE_PARENT}/mail` });
    try {
      const tracer = trace.getTracer('test-app');
      const info = await tracer.startActiveSpan('job', async (span) => {
        try {
          return await app.deferred.defer('sendEmail', ['grace@example.com']);
        } finally {
          span.end();
        }
      });
      const [defer] = byName(tracing.spans(), 'defer sendEmail');
      assert.ok(defer);
      const { traceId, spanId } = defer.spanContext();
      const [tasks] = await client.listTasks({ parent: `${QUEUE_PARENT}/mail`, responseView: 'FULL' });
      const headers = tasks[0]?.httpRequest?.headers ?? {};
      assert.equal(headers.traceparent, `00-${traceId}-${spanId}-01`);
      assert.equal(headers['X-Cloud-Trace-Context'], `${traceId}/${BigInt(`0x${spanId}`).toString(10)};o=1`);
      await client.resumeQueue({ name: `${QUEUE_PARENT}/mail` });
      await info.wait({ timeoutMs: 10_000 });
    } finally {
      await client.resumeQueue({ name: `${QUEUE_PARENT}/mail` }).catch(() => undefined);
      await client.close();
    }
  });

  it('each retry is a delivery span under the same defer span; a failed run is an error span; logs carry the trace', async () => {
    flakyFailures = 1;
    const tracer = trace.getTracer('test-app');
    const info = await tracer.startActiveSpan('cron', async (span) => {
      try {
        return await app.deferred.defer('flaky', []);
      } finally {
        span.end();
      }
    });
    const record = await info.wait({ timeoutMs: 10_000 });
    assert.equal(record.status, 'succeeded');
    await app.deferred.drain();
    const spans = tracing.spans();
    const [defer] = byName(spans, 'defer flaky');
    const deliveries = byName(spans, 'deliver flaky');
    const runs = byName(spans, 'run flaky').sort((a, b) => Number(a.attributes['cloud_defer.attempt']) - Number(b.attributes['cloud_defer.attempt']));
    assert.ok(defer);
    assert.equal(deliveries.length, 2);
    for (const delivery of deliveries) assert.equal(parentOf(delivery), defer.spanContext().spanId);
    assert.deepEqual(
      runs.map((r) => r.attributes['cloud_defer.attempt']),
      [0, 1],
    );
    assert.equal(runs[0]!.status.code, SpanStatusCode.ERROR);
    assert.equal(runs[0]!.events[0]?.name, 'exception');
    assert.notEqual(runs[1]!.status.code, SpanStatusCode.ERROR);
    // The failed attempt's log entry points at the same trace, as Cloud Logging links it.
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.taskId === info.id);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!['logging.googleapis.com/trace'], `projects/trace-project/traces/${defer.spanContext().traceId}`);
    assert.equal(entries[0]!.severity, 'ERROR');
  });

  it("deferIteration: the start, every shard, the callbacks' runs and finalize carry the iteration's trace", async () => {
    const tracer = trace.getTracer('test-app');
    let traceId = '';
    const iteration = await tracer.startActiveSpan('nightly job', async (span) => {
      traceId = span.spanContext().traceId;
      try {
        return await app.deferred.deferIteration(
          Array.from({ length: 12 }, (_, i) => i),
          app.deferred.task('visitItem', (_item: number) => undefined),
          app.deferred.task('visitFinished', () => undefined),
          { shards: 3 },
        );
      } finally {
        span.end();
      }
    });
    await iteration.wait({ timeoutMs: 20_000 });
    await app.deferred.drain();
    const runs = tracing.spans().filter((s) => s.name.startsWith('run '));
    const names = new Set(runs.map((s) => s.name));
    assert.ok(names.has('run cloud-defer.iteration.start'), [...names].join(', '));
    assert.ok(names.has('run cloud-defer.iteration.shard'));
    assert.ok(names.has('run cloud-defer.iteration.finalize'));
    assert.ok(runs.filter((s) => s.name === 'run cloud-defer.iteration.shard').length >= 3);
    for (const span of tracing.spans()) assert.equal(span.spanContext().traceId, traceId, span.name);
  });

  it('telemetry: false adds no spans and no trace headers', async () => {
    const plain = await startApp('express', { telemetry: false, logger: false }, (deferred) => {
      deferred.task('quiet', () => undefined);
    });
    try {
      const client = createEmulatorClient(plain.deferred.emulator!);
      await client.pauseQueue({ name: `${QUEUE_PARENT}/default` });
      const info = await trace.getTracer('test-app').startActiveSpan('outer', async (span) => {
        try {
          return await plain.deferred.defer('quiet', []);
        } finally {
          span.end();
        }
      });
      const [tasks] = await client.listTasks({ parent: `${QUEUE_PARENT}/default`, responseView: 'FULL' });
      assert.equal(tasks[0]?.httpRequest?.headers?.traceparent, undefined);
      await client.resumeQueue({ name: `${QUEUE_PARENT}/default` });
      await client.close();
      await info.wait({ timeoutMs: 10_000 });
      assert.deepEqual(
        tracing.spans().map((s) => s.name),
        ['outer'],
      );
    } finally {
      await plain.close();
    }
  });
});

describe('OpenTelemetry: task metrics by queue and task', () => {
  it('counts deferred, runs, succeeded, failed and retried, and records run durations', async () => {
    const metrics = startMetrics();
    let failures = 1;
    const app = await startApp(
      'express',
      { logger: false, telemetry: openTelemetry({ meterProvider: metrics.meterProvider }), queues: [{ name: 'reports' }] },
      (deferred) => {
        deferred.task(
          'buildReport',
          () => {
            if (failures-- > 0) throw new Error('not yet');
          },
          { queue: 'reports' },
        );
        deferred.task(
          'doomed',
          () => {
            throw new Error('never works');
          },
          { maxAttempts: 1 },
        );
      },
    );
    try {
      await app.deferred.defer('buildReport', []);
      await app.deferred.defer('buildReport', []);
      await app.deferred.defer('doomed', []);
      await app.deferred.drain();
      const report = { 'cloud_defer.task.name': 'buildReport', 'cloud_defer.queue': 'reports' };
      const doomed = { 'cloud_defer.task.name': 'doomed', 'cloud_defer.queue': 'default' };
      assert.equal(await metrics.counter('cloud_defer.tasks.deferred', report), 2);
      assert.equal(await metrics.counter('cloud_defer.tasks.deferred', doomed), 1);
      assert.equal(await metrics.counter('cloud_defer.tasks.runs', report), 3);
      assert.equal(await metrics.counter('cloud_defer.tasks.succeeded', report), 2);
      assert.equal(await metrics.counter('cloud_defer.tasks.retried', report), 1);
      assert.equal(await metrics.counter('cloud_defer.tasks.failed', report), 0);
      assert.equal(await metrics.counter('cloud_defer.tasks.failed', doomed), 1);
      assert.equal(await metrics.histogramCount('cloud_defer.task.duration', report), 3);
    } finally {
      await app.close();
      await metrics.meterProvider.shutdown();
    }
  });
});

describe('OpenTelemetry: the API installed, the SDK registered later', () => {
  it('no spans while no provider is registered; spans from the first defer after the SDK registers, on the same engine', async () => {
    const app = await startApp('express', { logger: false }, (deferred) => {
      deferred.task('late', () => trace.getActiveSpan()?.spanContext().traceId);
    });
    let tracing: TracingHarness | undefined;
    try {
      const client = createEmulatorClient(app.deferred.emulator!);
      await client.pauseQueue({ name: `${QUEUE_PARENT}/default` });
      // No SDK: the task carries no trace headers and runs with no active span.
      const before = await app.deferred.defer('late', []);
      const [queued] = await client.listTasks({ parent: `${QUEUE_PARENT}/default`, responseView: 'FULL' });
      assert.equal(queued[0]?.httpRequest?.headers?.traceparent, undefined);
      await client.resumeQueue({ name: `${QUEUE_PARENT}/default` });
      await client.close();
      assert.equal((await before.wait({ timeoutMs: 10_000 })).status, 'succeeded');

      tracing = startTracing();
      const after = await app.deferred.defer('late', []);
      assert.equal((await after.wait({ timeoutMs: 10_000 })).status, 'succeeded');
      await app.deferred.drain();
      const names = tracing.spans().map((s) => s.name);
      for (const name of ['defer late', 'deliver late', 'run late']) assert.ok(names.includes(name), names.join(', '));
      const [defer] = byName(tracing.spans(), 'defer late');
      const [delivery] = byName(tracing.spans(), 'deliver late');
      assert.equal(parentOf(delivery!), defer!.spanContext().spanId, 'the delivery continues the defer across HTTP');
    } finally {
      await app.close();
      await tracing?.stop();
    }
  });
});
