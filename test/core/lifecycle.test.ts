/** The lifecycle's pure functions, one behaviour at a time (no store, no clock). */
import assert from 'node:assert/strict';
import * as lifecycle from '../../src/core/lifecycle.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { SettleInput } from '../../src/core/stores.js';
import { sampleRecord } from '../helpers/records.js';

const T0 = 1_700_000_000_000;
const queued = (fields: Partial<TaskRecord> = {}): TaskRecord => sampleRecord('unit.task', { createdAt: T0, ...fields });
const lease = { owner: 'a', now: T0 + 10, leaseMs: 1_000, executionCount: 1 };
const running = (): TaskRecord => {
  const decision = lifecycle.acquireLease(queued(), lease);
  assert.equal(decision.kind, 'acquired');
  return decision.record;
};
const settleInput = (status: SettleInput['status'], owner = 'a'): SettleInput => ({
  owner,
  status,
  now: T0 + 500,
  attempt: { at: T0 + 10, statusCode: status === 'succeeded' ? 200 : 500, outcome: status, durationMs: 490 },
  expiresAt: T0 + 99_000,
  ...(status === 'succeeded' ? {} : { error: { message: 'boom' } }),
});

describe('lifecycle: create with a reference', function () {
  it('creates a record without a reference as given, with no hold', function () {
    const record = queued();
    assert.deepEqual(lifecycle.createWithReference(record, T0, {}), { kind: 'create', record });
  });

  it('a reference gets a hold naming the new record', function () {
    const record = queued({ reference: 'order-1', uniqueUntil: T0 + 5 });
    const decision = lifecycle.createWithReference(record, T0, {});
    assert.equal(decision.kind, 'create');
    assert.deepEqual(decision.kind === 'create' && decision.hold, { reference: 'order-1', taskId: record.id, held: true, uniqueUntil: T0 + 5 });
  });

  it('an unfinished holder before its uniqueUntil refuses the new record and is returned', function () {
    const holder = queued({ reference: 'r', uniqueUntil: T0 + 100 });
    const hold = { reference: 'r', taskId: holder.id, held: true };
    assert.deepEqual(lifecycle.createWithReference(queued({ reference: 'r' }), T0 + 99, { hold, holder }), { kind: 'held', existing: holder });
    assert.equal(lifecycle.createWithReference(queued({ reference: 'r' }), T0 + 100, { hold, holder }).kind, 'create');
  });

  it('a finished holder, a released hold, or a missing holder record frees the reference', function () {
    const holder = queued({ reference: 'r' });
    const hold = { reference: 'r', taskId: holder.id, held: true };
    assert.equal(lifecycle.createWithReference(queued({ reference: 'r' }), T0, { hold, holder: { ...holder, status: 'succeeded' } }).kind, 'create');
    assert.equal(lifecycle.createWithReference(queued({ reference: 'r' }), T0, { hold: { ...hold, held: false }, holder }).kind, 'create');
    assert.equal(lifecycle.createWithReference(queued({ reference: 'r' }), T0, { hold }).kind, 'create');
  });

  it('an existing record under the same id is refused', function () {
    const record = queued();
    assert.deepEqual(lifecycle.createWithReference(record, T0, { existing: record }), { kind: 'exists' });
  });
});

describe('lifecycle: leases', function () {
  it('acquiring a queued record runs it for the owner: attempts + 1, version + 1, startedAt set', function () {
    const before = queued();
    const record = running();
    assert.equal(record.status, 'running');
    assert.equal(record.leaseOwner, 'a');
    assert.equal(record.leaseUntil, T0 + 1_010);
    assert.equal(record.attempts, before.attempts + 1);
    assert.equal(record.version, before.version + 1);
    assert.equal(record.startedAt, T0 + 10);
    assert.equal(record.executionCount, 1);
  });

  it('the owner asking again changes nothing; a stranger is busy until the lease expires, then takes over', function () {
    const record = running();
    assert.deepEqual(lifecycle.acquireLease(record, lease), { kind: 'acquired', record, changed: false });
    assert.equal(lifecycle.acquireLease(record, { ...lease, owner: 'b', now: T0 + 1_009 }).kind, 'busy');
    const taken = lifecycle.acquireLease(record, { ...lease, owner: 'b', now: T0 + 1_010 });
    assert.equal(taken.kind === 'acquired' && taken.record.leaseOwner, 'b');
    assert.equal(taken.kind === 'acquired' && taken.record.attempts, 2);
  });

  it('finished records and missing ones are reported, not run', function () {
    assert.equal(lifecycle.acquireLease(queued({ status: 'cancelled' }), lease).kind, 'finished');
    assert.deepEqual(lifecycle.acquireLease(undefined, lease), { kind: 'missing' });
  });

  it('renewing extends only the owner’s live lease', function () {
    const record = running();
    assert.equal(lifecycle.renewLease(record, { owner: 'a', now: T0 + 900, leaseMs: 1_000 })?.leaseUntil, T0 + 1_900);
    assert.equal(lifecycle.renewLease(record, { owner: 'b', now: T0 + 900, leaseMs: 1_000 }), undefined);
    assert.equal(lifecycle.renewLease(record, { owner: 'a', now: T0 + 1_010, leaseMs: 1_000 }), undefined, 'an expired lease cannot be renewed');
  });

  it('releasing gives the lease back as retrying; only the owner may', function () {
    const record = running();
    const released = lifecycle.releaseLease(record, { owner: 'a', now: T0 + 20 });
    assert.equal(released?.status, 'retrying');
    assert.equal(released?.leaseOwner, undefined);
    assert.equal(released?.leaseUntil, undefined);
    assert.equal(lifecycle.releaseLease(record, { owner: 'b', now: T0 + 20 }), undefined);
  });
});

describe('lifecycle: runs cut short by their instance', function () {
  it('a run that ends without its own settle is counted in interruptedRuns: taken over after its lease ran out, released, or moved on by sweep', function () {
    const record = running();
    assert.equal(record.interruptedRuns, undefined, 'a first run is no interruption');
    const taken = lifecycle.acquireLease(record, { ...lease, owner: 'b', now: T0 + 1_010 });
    assert.equal(taken.kind === 'acquired' && taken.record.interruptedRuns, 1);
    const released = lifecycle.releaseLease(record, { owner: 'a', now: T0 + 20 });
    assert.equal(released?.interruptedRuns, 1);
    const swept = lifecycle.transition(record, ['running'], 'retrying', { lastError: { message: 'lease ran out' } }, T0 + 2_000);
    assert.equal(swept?.interruptedRuns, 1);
    const settled = lifecycle.settle(record, settleInput('retrying'));
    assert.equal(settled?.interruptedRuns, undefined, 'a settled run, even a failed one, is an attempt that counts');
    const again = lifecycle.acquireLease(swept, { ...lease, owner: 'c', now: T0 + 3_000 });
    assert.equal(again.kind === 'acquired' && again.record.interruptedRuns, 1, 'leasing a retrying record interrupts nothing');
  });

  it('countedAttempts forgives at most maxAttempts - 1 cut-short runs: maxAttempts 1 stays one run, a task that always kills its instance ends', function () {
    assert.equal(lifecycle.countedAttempts(1, 1, 1), 1, 'maxAttempts 1: the one run counts, cut short or not');
    assert.equal(lifecycle.countedAttempts(3, 3, 3), 1, 'three runs cut short, queue maxAttempts 3: two forgiven');
    assert.equal(lifecycle.countedAttempts(5, 5, 3), 3, 'a task cut short every time is given up after 2 x 3 - 1 runs');
    assert.equal(lifecycle.countedAttempts(3, 0, 3), 3, 'runs that failed all count');
    assert.equal(lifecycle.countedAttempts(3, 1, 2), 2, 'one cut-short run and two failures use up maxAttempts 2');
  });
});

describe('lifecycle: settle, transition, cancel', function () {
  it('settling records the outcome, clears the lease, appends the attempt and sets finishedAt when finished', function () {
    const settled = lifecycle.settle(running(), settleInput('failed'));
    assert.equal(settled?.status, 'failed');
    assert.equal(settled?.finishedAt, T0 + 500);
    assert.equal(settled?.leaseOwner, undefined);
    assert.equal(settled?.history.length, 1);
    assert.deepEqual(settled?.lastError, { message: 'boom' });
    assert.equal(settled?.expiresAt, T0 + 99_000);
    assert.equal(lifecycle.settle(running(), settleInput('retrying'))?.finishedAt, undefined);
  });

  it('a stale writer, or a record that is not running, cannot settle', function () {
    assert.equal(lifecycle.settle(running(), settleInput('succeeded', 'b')), undefined);
    assert.equal(lifecycle.settle(queued(), settleInput('succeeded')), undefined);
  });

  it('history keeps the newest MAX_HISTORY attempts', function () {
    let record: TaskRecord = queued();
    for (let i = 0; i < 25; i += 1) {
      const taken = lifecycle.acquireLease(record, { ...lease, now: T0 + i * 10 });
      assert.equal(taken.kind, 'acquired');
      record = lifecycle.settle(taken.kind === 'acquired' ? taken.record : record, {
        ...settleInput('retrying'),
        now: T0 + i * 10 + 1,
        attempt: { at: i, statusCode: 500, outcome: 'retrying', durationMs: 1 },
      })!;
    }
    assert.equal(record.history.length, 20);
    assert.equal(record.history[0]?.at, 5);
  });

  it('transitions follow the allowed moves only, apply the patch and clear what it leaves undefined', function () {
    const record = queued({ cloudTaskName: 'x', lastError: { message: 'old' } });
    const next = lifecycle.transition(record, ['queued'], 'failed', { lastError: undefined, cloudTaskName: 'y' }, T0 + 1);
    assert.equal(next?.status, 'failed');
    assert.equal(next?.cloudTaskName, 'y');
    assert.equal('lastError' in (next ?? {}), false);
    assert.equal(next?.finishedAt, T0 + 1);
    assert.equal(lifecycle.transition(record, ['running'], 'failed', {}, T0), undefined, 'not in from');
    assert.equal(lifecycle.transition(queued({ status: 'succeeded' }), ['succeeded'], 'running', {}, T0), undefined, 'not an allowed move');
  });

  it('cancel moves only pending records', function () {
    assert.equal(lifecycle.cancel(queued(), T0)?.status, 'cancelled');
    assert.equal(lifecycle.cancel(queued({ status: 'retrying' }), T0)?.status, 'cancelled');
    assert.equal(lifecycle.cancel(running(), T0), undefined);
  });

  it('a finishing holder frees its hold and a rerun holds it again; another task’s hold is left alone', function () {
    const record = queued({ reference: 'r' });
    const hold = { reference: 'r', taskId: record.id, held: true };
    assert.deepEqual(lifecycle.holdAfter(hold, { ...record, status: 'succeeded' }), { ...hold, held: false });
    assert.deepEqual(lifecycle.holdAfter({ ...hold, held: false }, record), hold);
    assert.equal(lifecycle.holdAfter(hold, record), undefined);
    assert.equal(lifecycle.holdAfter({ ...hold, taskId: 'other' }, { ...record, status: 'failed' }), undefined);
  });
});

describe('lifecycle: shards', function () {
  it('finisherRank orders the completions that saw every shard done the same way for each: latest finishedAt first, then highest index', function () {
    const marks = [
      { index: 0, finishedAt: T0 + 30 },
      { index: 1, finishedAt: T0 + 10 },
      { index: 2, finishedAt: T0 + 30 },
      { index: 3, finishedAt: T0 + 20 },
    ];
    assert.deepEqual(
      marks.map((mark) => lifecycle.finisherRank(marks, mark.index)),
      [1, 3, 0, 2],
    );
    assert.deepEqual(
      [...marks].reverse().map((mark) => lifecycle.finisherRank([...marks].reverse(), mark.index)),
      [2, 0, 3, 1],
      'the order the marks were read in does not matter',
    );
    assert.equal(lifecycle.finisherRank(marks, 9), 0, 'a shard not among the marks writes at once');
  });

  it('completing a shard marks it once', function () {
    const shard = { index: 0, processed: 3, errors: 0, done: false };
    const done = lifecycle.completeShard(shard, T0);
    assert.deepEqual(done, { ...shard, done: true, finishedAt: T0 });
    assert.equal(lifecycle.completeShard(done!, T0 + 1), undefined);
  });

  it('only a completion that sees every shard done finishes the iteration, and only while no finisher is named', function () {
    assert.deepEqual(lifecycle.shardCompletion({ shardCount: 3 }, 2, 1), { kind: 'report', allDone: false, shardsDone: 2 });
    assert.deepEqual(lifecycle.shardCompletion({ shardCount: 3 }, 3, 1), { kind: 'finish', allDone: true, shardsDone: 3 });
    assert.deepEqual(lifecycle.shardCompletion({ shardCount: 3, completedBy: 2 }, 3, 1), { kind: 'report', allDone: false, shardsDone: 3 });
  });

  it('the finisher asking again (a redelivery) hears allDone again without writing', function () {
    assert.deepEqual(lifecycle.shardCompletion({ shardCount: 3, completedBy: 1 }, 3, 1), { kind: 'report', allDone: true, shardsDone: 3 });
  });
});
