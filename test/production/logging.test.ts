/**
 * Logging with the real pino and winston, and the Cloud Logging JSON logger, over real HTTP
 * deliveries from the embedded emulator: every entry about a task keeps taskId, taskName, queue,
 * attempt and the error (with its stack).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import winston from 'winston';
import { cloudLoggingLogger, fieldsFirst, PermanentTaskFailure } from '../../src/index.js';
import { resolveLogger } from '../../src/logging/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

/** A stream that keeps each JSON line written to it. */
function jsonLines(): { stream: Writable; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const text = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (text.trim()) entries.push(JSON.parse(text) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { stream, entries };
}

function registerFailingTasks(app: { task: TestApp['deferred']['task'] }): void {
  app.task(
    'chargeCard',
    () => {
      throw new Error('card service timed out');
    },
    { maxAttempts: 2, queue: 'billing' },
  );
  app.task('closeAccount', () => {
    throw new PermanentTaskFailure('account already closed');
  });
}

function assertTaskFields(entry: Record<string, unknown>, taskId: string, taskName: string, queue: string, errorMessage: string): void {
  assert.equal(entry.taskId, taskId, JSON.stringify(entry));
  assert.equal(entry.taskName, taskName);
  assert.equal(entry.queue, queue);
  assert.equal(typeof entry.attempt, 'number');
  const error = entry.error as { message?: string; stack?: string };
  assert.equal(error.message, errorMessage);
  assert.match(error.stack ?? '', /at /, 'the stack is kept');
}

describe('logging: pino and winston keep every task field', () => {
  it('pino (recognised by its public API): each failure entry has taskId, taskName, queue, attempt and the error', async () => {
    const { stream, entries } = jsonLines();
    const logger = pino({ level: 'info' }, stream);
    const app = await startApp('express', { logger, queues: [{ name: 'billing' }] }, (deferred) => registerFailingTasks(deferred));
    try {
      const charged = await app.deferred.defer('chargeCard', []);
      const closed = await app.deferred.defer('closeAccount', []);
      await app.deferred.drain();
      const chargeEntries = entries.filter((e) => e.taskId === charged.id);
      // Two attempts: one "will retry" (500) and one "last allowed attempt".
      assert.equal(chargeEntries.length, 2, JSON.stringify(entries));
      for (const entry of chargeEntries) {
        assert.equal(entry.level, 50, 'pino level error');
        assert.match(String(entry.msg), /chargeCard/);
        assertTaskFields(entry, charged.id, 'chargeCard', 'billing', 'card service timed out');
      }
      assert.deepEqual(
        chargeEntries.map((e) => e.attempt),
        [1, 2],
      );
      const closeEntry = entries.find((e) => e.taskId === closed.id);
      assert.ok(closeEntry, 'the permanent failure is logged');
      assert.equal(closeEntry.level, 40, 'pino level warn');
      assertTaskFields(closeEntry, closed.id, 'closeAccount', 'default', 'account already closed');
    } finally {
      await app.close();
    }
  });

  it('a pino child logger, and any (fields, message) logger through fieldsFirst(), get the same fields', async () => {
    const { stream, entries } = jsonLines();
    const child = pino(stream).child({ component: 'worker' });
    const viaWrapper = fieldsFirst(pino(stream));
    for (const logger of [child, viaWrapper]) {
      entries.length = 0;
      const app = await startApp('koa', { logger, queues: [{ name: 'billing' }] }, (deferred) => registerFailingTasks(deferred));
      try {
        const closed = await app.deferred.defer('closeAccount', []);
        await app.deferred.drain();
        const entry = entries.find((e) => e.taskId === closed.id);
        assert.ok(entry, JSON.stringify(entries));
        assertTaskFields(entry, closed.id, 'closeAccount', 'default', 'account already closed');
      } finally {
        await app.close();
      }
    }
    assert.ok(entries.length > 0);
  });

  it('winston (message first, JSON format): each failure entry has the same fields', async () => {
    const { stream, entries } = jsonLines();
    const logger = winston.createLogger({ level: 'info', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
    const app = await startApp('express', { logger, queues: [{ name: 'billing' }] }, (deferred) => registerFailingTasks(deferred));
    try {
      const charged = await app.deferred.defer('chargeCard', []);
      const closed = await app.deferred.defer('closeAccount', []);
      await app.deferred.drain();
      await new Promise((resolve) => setImmediate(resolve));
      const chargeEntries = entries.filter((e) => e.taskId === charged.id);
      assert.equal(chargeEntries.length, 2, JSON.stringify(entries));
      for (const entry of chargeEntries) {
        assert.equal(entry.level, 'error');
        assert.match(String(entry.message), /chargeCard/);
        assertTaskFields(entry, charged.id, 'chargeCard', 'billing', 'card service timed out');
      }
      const closeEntry = entries.find((e) => e.taskId === closed.id);
      assert.ok(closeEntry);
      assert.equal(closeEntry.level, 'warn');
      assertTaskFields(closeEntry, closed.id, 'closeAccount', 'default', 'account already closed');
    } finally {
      await app.close();
      logger.close();
    }
  });

  it('the default console logger writes one line per entry, fields as JSON', async () => {
    const printed: string[] = [];
    const original = console.error;
    console.error = (...parts: unknown[]) => printed.push(parts.map(String).join(' '));
    const app = await startApp('express', { logger: 'console', queues: [{ name: 'billing' }] }, (deferred) => registerFailingTasks(deferred));
    try {
      const charged = await app.deferred.defer('chargeCard', []);
      await app.deferred.drain();
      const mine = printed.filter((p) => p.includes(charged.id));
      assert.equal(mine.length, 2, printed.join('\n---\n'));
      for (const text of mine) {
        assert.equal(text.split('\n').length, 1, 'one line');
        const json = JSON.parse(text.slice(text.indexOf('{'))) as Record<string, unknown>;
        assertTaskFields(json, charged.id, 'chargeCard', 'billing', 'card service timed out');
      }
    } finally {
      console.error = original;
      await app.close();
    }
  });

  it('a logger without info/warn/error is refused with what to pass', () => {
    assert.throws(() => resolveLogger({ log() {} } as never), /info, warn and error/);
  });
});

describe('logging: the Cloud Logging JSON logger', () => {
  it('writes severity, message, time, task labels and stack_trace for each failed attempt', async () => {
    const lines: string[] = [];
    const logger = cloudLoggingLogger({ projectId: 'my-project', write: (line) => lines.push(line) });
    const app = await startApp('express', { logger, queues: [{ name: 'billing' }] }, (deferred) => registerFailingTasks(deferred));
    try {
      const info = await app.deferred.defer('chargeCard', []);
      await app.deferred.drain();
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const failures = entries.filter((e) => (e['logging.googleapis.com/labels'] as Record<string, string> | undefined)?.taskId === info.id);
      assert.equal(failures.length, 2);
      for (const entry of failures) {
        assert.equal(entry.severity, 'ERROR');
        assert.match(String(entry.message), /chargeCard/);
        assert.ok(!Number.isNaN(Date.parse(String(entry.time))));
        assert.match(String(entry.stack_trace), /Error: card service timed out\n\s+at /);
        const labels = entry['logging.googleapis.com/labels'] as Record<string, string>;
        assert.equal(labels.taskName, 'chargeCard');
        assert.equal(labels.queue, 'billing');
        assert.match(labels.attempt!, /^[12]$/);
      }
      // Without a trace header there is no trace field (the traced case is in otel.test.ts and cloud-run.test.ts).
      assert.ok(failures.every((e) => !('logging.googleapis.com/trace' in e)));
    } finally {
      await app.close();
    }
  });

  it("maps traceId/spanId fields to Cloud Logging's trace fields, and survives unserialisable fields", () => {
    const lines: string[] = [];
    const logger = cloudLoggingLogger({ projectId: 'p1', write: (line) => lines.push(line), service: { service: 'api', version: 'r1' } });
    logger.warn('slow', { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceSampled: true, taskId: 't1', big: 10n });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    logger.error('broken fields', { cyclic });
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(first!.severity, 'WARNING');
    assert.equal(first!['logging.googleapis.com/trace'], `projects/p1/traces/${'a'.repeat(32)}`);
    assert.equal(first!['logging.googleapis.com/spanId'], 'b'.repeat(16));
    assert.equal(first!['logging.googleapis.com/trace_sampled'], true);
    assert.equal(first!.big, '10');
    assert.deepEqual(first!.serviceContext, { service: 'api', version: 'r1' });
    assert.equal(second!.severity, 'ERROR');
    assert.equal(second!.message, 'broken fields');
  });
});
