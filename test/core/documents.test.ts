/**
 * The core's read -> decide -> commit loop over the memory DocumentStore: lost commits are
 * decided again with backoff until a time budget is spent, and shard completion never makes every
 * shard write the iteration's own document.
 */
import assert from 'node:assert/strict';
import { memoryStores } from '../../adapters/memory/index.js';
import { DEFAULT_RETRY, DocumentIterationStore, DocumentStateStore, retryPause, type DocumentStore, type DocumentWrite } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { IterationRecord } from '../../src/core/iteration.js';
import type { TaskRecord } from '../../src/core/records.js';
import { sampleRecord } from '../helpers/records.js';

const HOUR = 3_600_000;

function iteration(id: string): IterationRecord {
  const now = Date.now();
  return {
    id,
    callbackTask: 'docs.callback',
    finalizeTask: 'docs.finalize',
    queue: 'default',
    shardCount: 0,
    status: 'splitting',
    createdAt: now,
    updatedAt: now,
    shards: [],
    deleteMarker: false,
    expiresAt: now + HOUR,
  };
}

describe('documents: retrying lost commits', function () {
  it('50 concurrent writers of one reference all settle: one creates the task, 49 get it back', async function () {
    const docs = memoryStores().state.documents;
    const state = new DocumentStateStore(docs);
    const now = Date.now();
    const records = Array.from({ length: 50 }, () => sampleRecord('docs.race', { reference: 'order-50', createdAt: now }));
    const results = await Promise.all(records.map((record) => state.createTask(record, now)));
    const winners = records.filter((_, i) => results[i]!.created);
    assert.equal(winners.length, 1);
    for (const result of results) if (!result.created) assert.equal(result.existing.id, winners[0]!.id);
    assert.equal((await state.findByReference('order-50'))?.id, winners[0]!.id);
    for (const record of records) if (record !== winners[0]) assert.equal(await state.getTask(record.id), undefined, 'a loser wrote nothing');
  });

  it('with a budget of one round, the writers that lost it fail with STORE_UNAVAILABLE and a way forward', async function () {
    const docs = memoryStores().state.documents;
    const state = new DocumentStateStore(docs, { retry: { maxRounds: 1 } });
    const now = Date.now();
    const records = Array.from({ length: 20 }, () => sampleRecord('docs.race', { reference: 'order-20', createdAt: now }));
    const settled = await Promise.allSettled(records.map((record) => state.createTask(record, now)));
    const created = settled.filter((s) => s.status === 'fulfilled' && s.value.created);
    const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    assert.equal(created.length, 1);
    assert.ok(failed.length > 0, 'the writers that lost the one round were not retried');
    for (const error of failed) {
      assert.ok(error instanceof CloudDeferError);
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      assert.match(error.message, /Could not create a task: other writers kept changing the same documents \(1 rounds lost in \d+ ms\)\. Try again later/);
    }
  });

  it('keeps deciding again until the time budget is spent, pausing between rounds, then gives up', async function () {
    const memory = memoryStores().state.documents;
    const state = new DocumentStateStore(memory);
    const record = sampleRecord('docs.busy');
    await state.createTask(record, Date.now());
    // Another writer changes the task between every read and commit of the writer under test.
    let commits = 0;
    const contended: DocumentStore = {
      kind: 'memory-contended',
      read: (keys) => memory.read(keys),
      async commit(writes: readonly DocumentWrite[]) {
        commits += 1;
        const [current] = await memory.read([{ kind: 'task', id: record.id }]);
        if (current) await memory.commit([{ kind: 'task', id: record.id, expect: current.version, value: current.value as TaskRecord }]);
        return memory.commit(writes);
      },
      listTasks: (query) => memory.listTasks(query),
      listOutbox: (before, limit) => memory.listOutbox(before, limit),
      listIterations: (query) => memory.listIterations(query),
    };
    const victim = new DocumentStateStore(contended, { retry: { budgetMs: 300, firstPauseMs: 20, maxPauseMs: 60 } });
    const started = Date.now();
    const error = await victim.transition(record.id, ['queued'], 'cancelled', {}, Date.now()).then(
      () => undefined,
      (err: unknown) => err,
    );
    const elapsed = Date.now() - started;
    assert.ok(error instanceof CloudDeferError, 'the writer gave up');
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.ok(elapsed >= 300, `it kept trying for the whole budget (${elapsed} ms)`);
    assert.ok(commits > 2 && commits < 300, `it paused between rounds (${commits} rounds in ${elapsed} ms)`);
    assert.equal((await state.getTask(record.id))?.status, 'queued', 'the lost decision wrote nothing');
  });

  it('the default budget keeps trying for at least 30 s; pauses are full jitter under a doubling ceiling', function () {
    assert.ok(DEFAULT_RETRY.budgetMs >= 30_000);
    assert.ok(DEFAULT_RETRY.maxRounds >= 100);
    const policy = { firstPauseMs: 4, maxPauseMs: 100 };
    assert.equal(
      retryPause(0, policy, () => 0.99),
      0,
      'no pause before the first round',
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 10].map((lost) => retryPause(lost, policy, () => 0.999)),
      [3, 7, 15, 31, 63, 99, 99, 99],
    );
    for (let lost = 1; lost < 40; lost += 1)
      assert.equal(
        retryPause(lost, policy, () => 0),
        0,
        'full jitter reaches zero',
      );
  });
});

describe('documents: shard completion', function () {
  it('32 concurrent completions: one hears allDone, every shard is done, the header was written once', async function () {
    const docs = memoryStores().state.documents;
    const iterations = new DocumentIterationStore(docs);
    const id = 'it-32';
    await iterations.createIteration(iteration(id));
    await iterations.startIteration(id, 32, Date.now());
    const before = docs.rawDocument('iteration', id)!.version;
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => iterations.completeShard(id, i, Date.now())));
    const finishers = results.flatMap((result, i) => (result.allDone ? [i] : []));
    assert.equal(finishers.length, 1, 'exactly one completion finishes the iteration');
    assert.equal(results[finishers[0]!]!.shardsDone, 32);
    for (const result of results) assert.ok(result.shardsDone >= 1 && result.shardsDone <= 32);
    const stored = await iterations.getIteration(id);
    assert.ok(stored?.shards.every((shard) => shard.done));
    assert.equal(docs.rawDocument('iteration', id)!.version, before + 1, 'the completions wrote the header once, not once per shard');

    const repeats = await Promise.all(Array.from({ length: 32 }, (_, i) => iterations.completeShard(id, i, Date.now())));
    assert.deepEqual(
      repeats.map((r) => r.allDone),
      Array.from({ length: 32 }, (_, i) => i === finishers[0]),
      'a repeat changes nothing: only the finisher (a redelivery of its call) hears allDone again',
    );
    assert.equal(docs.rawDocument('iteration', id)!.version, before + 1);
  });

  it("32 concurrent completions on a store that locks pessimistically (colliding commits deadlock until a lock timeout, as on Google's Datastore-mode emulator): all finish, one hears allDone", async function () {
    this.timeout(30_000);
    // Scaled down 10x from the emulator: a lone commit takes 20 ms, colliding ones all wait out a
    // 200 ms lock timeout and fail; the retry policy keeps DEFAULT_RETRY's ratio of pause to lock timeout.
    const COMMIT_MS = 20;
    const LOCK_TIMEOUT_MS = 200;
    const memory = memoryStores().state.documents;
    const holders = new Map<string, Set<{ deadlocked: boolean }>>();
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const locking: DocumentStore = {
      kind: 'memory-pessimistic',
      // A read is a round trip too, so most completions read after every shard was marked.
      read: async (keys) => {
        await sleep(COMMIT_MS);
        return memory.read(keys);
      },
      async commit(writes) {
        const keys = writes.map((write) => `${write.kind}/${write.id}`);
        const attempt = { deadlocked: false };
        for (const key of keys) {
          const held = holders.get(key) ?? new Set();
          if (held.size > 0) {
            attempt.deadlocked = true;
            for (const other of held) other.deadlocked = true;
          }
          held.add(attempt);
          holders.set(key, held);
        }
        await sleep(COMMIT_MS);
        if (attempt.deadlocked) await sleep(LOCK_TIMEOUT_MS - COMMIT_MS);
        for (const key of keys) holders.get(key)?.delete(attempt);
        return attempt.deadlocked ? false : memory.commit(writes);
      },
      listTasks: (query) => memory.listTasks(query),
      listOutbox: (before, limit) => memory.listOutbox(before, limit),
      listIterations: (query) => memory.listIterations(query),
    };
    const iterations = new DocumentIterationStore(locking, { retry: { budgetMs: 10_000, firstPauseMs: 1, maxPauseMs: 100 } });
    const id = 'it-locks';
    await iterations.createIteration(iteration(id));
    await iterations.startIteration(id, 32, Date.now());
    const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => iterations.completeShard(id, i, Date.now())));
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
    assert.deepEqual(failed.slice(0, 1), [], `${failed.length} of 32 completions gave up`);
    const values = results.map((result) => (result as PromiseFulfilledResult<{ allDone: boolean }>).value);
    assert.equal(values.filter((value) => value.allDone).length, 1);
    assert.ok((await iterations.getIteration(id))?.shards.every((shard) => shard.done));
  });

  it('completions of a 200-shard iteration read a page of shards each, not every shard', async function () {
    const memory = memoryStores().state.documents;
    let shardReads = 0;
    const counting: DocumentStore = {
      kind: 'memory-counting',
      async read(keys) {
        shardReads += keys.filter((key) => key.kind === 'shard').length;
        return memory.read(keys);
      },
      commit: (writes) => memory.commit(writes),
      listTasks: (query) => memory.listTasks(query),
      listOutbox: (before, limit) => memory.listOutbox(before, limit),
      listIterations: (query) => memory.listIterations(query),
    };
    const iterations = new DocumentIterationStore(counting);
    await iterations.createIteration(iteration('it-200'));
    await iterations.startIteration('it-200', 200, Date.now());
    shardReads = 0;
    const results = [];
    for (let i = 0; i < 200; i += 1) results.push(await iterations.completeShard('it-200', i, Date.now()));
    assert.deepEqual(
      results.flatMap((r, i) => (r.allDone ? [i] : [])),
      [199],
    );
    // Each completion reads its own shard, then one page of 50 (the last reads all 200).
    assert.ok(shardReads <= 200 * 51 + 200, `${shardReads} shard reads for 200 completions (every shard each time: ${200 * 201})`);
  });

  it('a completion that did not see every shard done is not the finisher; the last one is', async function () {
    const docs = memoryStores().state.documents;
    const iterations = new DocumentIterationStore(docs);
    await iterations.createIteration(iteration('it-3'));
    await iterations.startIteration('it-3', 3, Date.now());
    assert.deepEqual(await iterations.completeShard('it-3', 2, Date.now()), { allDone: false, shardsDone: 1 });
    assert.deepEqual(await iterations.completeShard('it-3', 2, Date.now()), { allDone: false, shardsDone: 1 }, 'a repeat does not count twice');
    assert.deepEqual(await iterations.completeShard('it-3', 0, Date.now()), { allDone: false, shardsDone: 2 });
    assert.deepEqual(await iterations.completeShard('it-3', 1, Date.now()), { allDone: true, shardsDone: 3 });
    assert.deepEqual(await iterations.completeShard('it-3', 9, Date.now()), { allDone: false, shardsDone: 0 }, 'an unknown shard');
    assert.deepEqual(await iterations.completeShard('missing', 0, Date.now()), { allDone: false, shardsDone: 0 }, 'an unknown iteration');
  });
});

describe('documents: a lease on a task this store created', function () {
  /** The memory documents, counting task reads and commits, shared by two stores as two instances would share a backend. */
  function counted() {
    const memory = memoryStores().state.documents;
    const counts = { taskReads: 0, commits: 0 };
    const docs: DocumentStore = {
      kind: 'memory-counted',
      read(keys) {
        counts.taskReads += keys.filter((key) => key.kind === 'task').length;
        return memory.read(keys);
      },
      commit(writes) {
        counts.commits += 1;
        return memory.commit(writes);
      },
      listTasks: (query) => memory.listTasks(query),
      listOutbox: (before, limit) => memory.listOutbox(before, limit),
      listIterations: (query) => memory.listIterations(query),
    };
    return { docs, counts, here: new DocumentStateStore(docs), elsewhere: new DocumentStateStore(docs) };
  }
  const input = (owner: string, now: number) => ({ owner, now, leaseMs: 60_000, executionCount: 1 });

  it('skips the read: one commit, and the stored record is the lease', async function () {
    const { counts, here, elsewhere } = counted();
    const record = sampleRecord('docs.lease');
    await here.createTask(record, record.createdAt);
    counts.taskReads = 0;
    counts.commits = 0;
    const outcome = await here.acquireLease(record.id, input('w1', record.createdAt + 1));
    assert.equal(outcome.kind, 'acquired');
    assert.deepEqual(counts, { taskReads: 0, commits: 1 });
    const stored = await elsewhere.getTask(record.id);
    assert.equal(stored?.status, 'running');
    assert.equal(stored?.leaseOwner, 'w1');
    assert.equal(stored?.attempts, 1);
  });

  it('another instance leased it first: the commit is refused, the read shows its lease, and nothing is overwritten', async function () {
    const { here, elsewhere } = counted();
    const record = sampleRecord('docs.lease');
    await here.createTask(record, record.createdAt);
    assert.equal((await elsewhere.acquireLease(record.id, input('other', record.createdAt + 1))).kind, 'acquired');
    const outcome = await here.acquireLease(record.id, input('w1', record.createdAt + 2));
    assert.equal(outcome.kind, 'busy');
    assert.equal((await elsewhere.getTask(record.id))?.leaseOwner, 'other');
    assert.equal((await elsewhere.getTask(record.id))?.attempts, 1, 'one attempt counted');
  });

  it('another instance finished or cancelled it: finished, decided on a read (the remembered record says queued)', async function () {
    const { counts, here, elsewhere } = counted();
    const record = sampleRecord('docs.lease');
    await here.createTask(record, record.createdAt);
    await elsewhere.transition(record.id, ['queued'], 'cancelled', {}, record.createdAt + 1);
    counts.taskReads = 0;
    const outcome = await here.acquireLease(record.id, input('w1', record.createdAt + 2));
    assert.equal(outcome.kind, 'finished');
    assert.ok(counts.taskReads >= 1, 'the outcome came from a read');
    assert.equal((await elsewhere.getTask(record.id))?.status, 'cancelled');
  });

  it('created finished, then queued again by another instance (a rerun): the lease is taken, not refused as finished', async function () {
    const { here, elsewhere } = counted();
    const record = sampleRecord('docs.lease', { status: 'failed', finishedAt: Date.now() });
    await here.createTask(record, record.createdAt);
    await elsewhere.transition(record.id, ['failed'], 'queued', { finishedAt: undefined }, record.createdAt + 1);
    const outcome = await here.acquireLease(record.id, input('w1', record.createdAt + 2));
    assert.equal(outcome.kind, 'acquired');
    assert.equal((await elsewhere.getTask(record.id))?.leaseOwner, 'w1');
  });

  it("the caller's record object changed after the create does not count; the second lease of a task reads", async function () {
    const { counts, here, elsewhere } = counted();
    const record = sampleRecord('docs.lease');
    await here.createTask(record, record.createdAt);
    record.status = 'cancelled';
    const first = await here.acquireLease(record.id, input('w1', record.createdAt + 1));
    assert.equal(first.kind, 'acquired');
    counts.taskReads = 0;
    const again = await here.acquireLease(record.id, input('w2', record.createdAt + 2));
    assert.equal(again.kind, 'busy');
    assert.equal(counts.taskReads, 1);
    assert.equal((await elsewhere.getTask(record.id))?.leaseOwner, 'w1');
  });

  it('remembers a bounded number of records: the oldest beyond it lease through a read', async function () {
    const { counts, here } = counted();
    const records = Array.from({ length: 600 }, () => sampleRecord('docs.lease'));
    for (const record of records) await here.createTask(record, record.createdAt);
    counts.taskReads = 0;
    for (const record of records) assert.equal((await here.acquireLease(record.id, input('w', record.createdAt + 1))).kind, 'acquired');
    assert.ok(counts.taskReads > 0 && counts.taskReads < 600, `${counts.taskReads} of 600 leases read`);
  });
});
