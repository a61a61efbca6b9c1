/** cloud-defer/adapter: what an adapter author imports, and the one status list and queue-id rule. */
import assert from 'node:assert/strict';
import * as adapter from '../../adapters/adapter.js';
import { memoryStores } from '../../adapters/memory/index.js';
import { isTaskStatus, TASK_STATUSES } from '../../src/core/records.js';
import { isQueueId } from '../../src/core/transport.js';

describe('cloud-defer/adapter', function () {
  it('exports the contract suite, the primitives-based stores and the lifecycle', function () {
    assert.equal(typeof adapter.describeStoreContract, 'function');
    assert.equal(typeof adapter.DocumentStateStore, 'function');
    assert.equal(typeof adapter.DocumentIterationStore, 'function');
    assert.equal(typeof adapter.lifecycle.acquireLease, 'function');
    assert.equal(typeof adapter.encodeCursor, 'function');
  });

  it('exports every value a fifth backend uses', function () {
    for (const name of [
      'describeStoreContract',
      'DocumentStateStore',
      'DocumentIterationStore',
      'shardId',
      'DEFAULT_RETRY',
      'retryPause',
      'lifecycle',
      'encodeCursor',
      'decodeCursor',
      'newestFirst',
      'CloudDeferError',
      'sumCounterRows',
      'emptyBucket',
      'resolutionMs',
      'TASK_STATUSES',
      'TASK_RECORD_FIELDS',
      'canTransition',
      'isFinished',
    ] as const) {
      assert.ok(Object.keys(adapter).includes(name), `cloud-defer/adapter exports ${name}`);
    }
  });

  it('a backend written against the entry alone (its primitives and payloads) is a working Stores: one of 20 racing defers wins, one of 8 shard completions hears allDone', async function () {
    const backend = tinyBackend();
    const now = Date.now();
    const records = Array.from({ length: 20 }, (_, i) => ({ ...sample(now), id: `tiny-${i}`, reference: 'tiny-ref' }));
    const results = await Promise.all(records.map((record) => backend.state.createTask(record, now)));
    assert.equal(results.filter((r) => r.created).length, 1, 'one of 20 racing defers of a reference is created');
    const iterations = backend.iterations!;
    const header = { id: 'tiny-it', callbackTask: 'c', finalizeTask: 'f', queue: 'default', shardCount: 0, status: 'splitting' as const };
    await iterations.createIteration({ ...header, createdAt: now, updatedAt: now, shards: [], deleteMarker: false, expiresAt: now + 60_000 });
    await iterations.startIteration('tiny-it', 8, now);
    const done = await Promise.all(Array.from({ length: 8 }, (_, i) => iterations.completeShard('tiny-it', i, now)));
    assert.equal(done.filter((r) => r.allDone).length, 1);
    const page = await backend.state.listTasks({ reference: 'tiny-ref' });
    assert.equal(page.records.length, 1);
  });

  it('a StateStore built on a DocumentStore decides in the core: a stale owner cannot settle', async function () {
    const stores = memoryStores();
    const state = new adapter.DocumentStateStore(stores.state.documents);
    const now = Date.now();
    const record = { ...sample(now), id: 'entry-1' };
    assert.deepEqual(await state.createTask(record, now), { created: true });
    const first = await state.acquireLease('entry-1', { owner: 'a', now, leaseMs: 10, executionCount: 1 });
    assert.equal(first.kind, 'acquired');
    const second = await state.acquireLease('entry-1', { owner: 'b', now: now + 10, leaseMs: 10_000, executionCount: 2 });
    assert.equal(second.kind, 'acquired', 'the expired lease is taken over');
    const stale = await state.settle('entry-1', {
      owner: 'a',
      status: 'succeeded',
      now: now + 11,
      attempt: { at: now, statusCode: 200, outcome: 'succeeded', durationMs: 11 },
      expiresAt: now + 60_000,
    });
    assert.equal(stale, undefined);
    assert.equal((await stores.state.getTask('entry-1'))?.leaseOwner, 'b', 'the memory stores see the same documents');
    assert.equal(stores.state.documents.rawDocument('task', 'entry-1')?.version, 3, 'create, then two acquisitions');
  });

  it('one status list and one queue-id rule', function () {
    assert.deepEqual(TASK_STATUSES, ['queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled']);
    assert.ok(isTaskStatus('cancelled'));
    assert.ok(!isTaskStatus('done'));
    assert.ok(isQueueId('emails-2'));
    assert.ok(!isQueueId('emails_2'));
    assert.ok(!isQueueId('q'.repeat(101)));
  });
});

function sample(now: number): adapter.TaskRecord {
  return {
    id: '',
    taskName: 'entry.task',
    queue: 'default',
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta: now,
    attempts: 0,
    executionCount: 0,
    payloadSize: 1,
    history: [],
    version: 1,
    expiresAt: now + 60_000,
  };
}

/**
 * The smallest backend an adapter author could write with cloud-defer/adapter only: a row per
 * document with a version column, a commit that checks every expected version first (what a SQL
 * backend does in one transaction with SELECT ... FOR UPDATE), and the listings.
 */
function tinyBackend(): adapter.Stores {
  const rows = new Map<string, { value: unknown; version: number }>();
  const values = <K extends adapter.DocumentKind>(kind: K): Array<adapter.DocumentValues[K]> =>
    [...rows].filter(([key]) => key.startsWith(`${kind}:`)).map(([, row]) => structuredClone(row.value) as adapter.DocumentValues[K]);
  const page = <T extends { createdAt: number; id: string }>(all: T[], query: { cursor?: string; limit?: number }) => {
    const after = query.cursor ? adapter.decodeCursor(query.cursor) : undefined;
    const sorted = all.filter((r) => !after || adapter.newestFirst(r, after) > 0).sort(adapter.newestFirst);
    const limit = Math.min(query.limit ?? 50, 1000);
    const last = sorted[limit - 1];
    return { records: sorted.slice(0, limit), ...(sorted.length > limit && last ? { nextCursor: adapter.encodeCursor(last) } : {}) };
  };
  const docs: adapter.DocumentStore = {
    kind: 'tiny',
    async read(keys) {
      return keys.map(({ kind, id }) => {
        const row = rows.get(`${kind}:${id}`);
        return row && ({ value: structuredClone(row.value), version: row.version } satisfies adapter.Versioned<unknown>);
      });
    },
    async commit(writes: readonly adapter.DocumentWrite[]) {
      const stale = writes.some((w) => {
        const row = rows.get(`${w.kind}:${w.id}`);
        return w.expect === 'absent' ? row !== undefined : row?.version !== w.expect;
      });
      if (stale) return false;
      for (const w of writes) {
        if (w.value === null) rows.delete(`${w.kind}:${w.id}`);
        else rows.set(`${w.kind}:${w.id}`, { value: structuredClone(w.value), version: w.expect === 'absent' ? 1 : w.expect + 1 });
      }
      return true;
    },
    async listTasks(query: adapter.TaskQuery) {
      return page(
        values('task').filter((r) => !query.reference || r.reference === query.reference),
        query,
      );
    },
    async listOutbox(createdBefore, limit) {
      return values('outbox')
        .filter((e) => e.createdAt < createdBefore)
        .sort((a, b) => a.createdAt - b.createdAt)
        .slice(0, limit);
    },
    async listIterations(query) {
      return page(values('iteration'), query);
    },
  };
  const payloads = new Map<string, Uint8Array>();
  const payloadStore: adapter.PayloadStore = {
    async put(id, data) {
      payloads.set(id, Uint8Array.from(data));
    },
    async get(id) {
      return payloads.get(id);
    },
    async delete(id) {
      payloads.delete(id);
    },
  };
  return {
    kind: 'tiny',
    payloads: payloadStore,
    state: new adapter.DocumentStateStore(docs),
    iterations: new adapter.DocumentIterationStore(docs, { retry: { budgetMs: 5_000 } }),
    transactions: [],
  };
}
