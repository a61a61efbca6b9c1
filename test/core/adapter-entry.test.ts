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
