/**
 * The store contract: one suite every adapter must pass. Each adapter's test file calls
 * describeStoreContract with a harness that also reads the backend directly (RawBackend), so
 * the suite checks what was really written, not only what the adapter says it wrote.
 *
 * Atomicity promises are proved with concurrent callers on separate connections
 * (harness.contenders), so that their calls really interleave at the server.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { newestFirst } from '../src/core/cursor.js';
import { CloudDeferError } from '../src/core/errors.js';
import { canTransition, isFinished, MAX_HISTORY, TASK_STATUSES, type AttemptRecord, type TaskRecord, type TaskStatus } from '../src/core/records.js';
import type { IterationRecord, ShardProgress } from '../src/core/iteration.js';
import type { OutboxEntry, SettleInput, StagedDefer, Stores, TaskQuery, TransactionHook } from '../src/core/stores.js';

/** The parts of mocha's BDD interface the suite uses; taken from the global scope when it runs. */
interface SuiteContext {
  timeout(ms: number): void;
}
interface TestContext extends SuiteContext {
  /** Marks the running test pending (mocha's this.skip()). */
  skip(): never;
}
interface MochaGlobals {
  describe(title: string, body: (this: SuiteContext) => void): void;
  it(title: string, body: (this: TestContext) => Promise<void> | void): void;
  before(body: (this: SuiteContext) => Promise<void> | void): void;
  after(body: (this: SuiteContext) => Promise<void> | void): void;
}

export interface RawBackend {
  /** The stored record, decoded by the test from the backend's own representation; undefined when absent or expired. */
  rawTask(id: string): Promise<TaskRecord | undefined>;
  /** The stored payload bytes; undefined when absent or expired. */
  rawPayload(id: string): Promise<Uint8Array | undefined>;
  /** When the backend will drop the record (epoch ms); undefined when there is none. */
  rawTaskExpiry(id: string): Promise<number | undefined>;
  /** When the backend will drop the payload (epoch ms); undefined when there is none. */
  rawPayloadExpiry(id: string): Promise<number | undefined>;
  rawOutbox(taskId: string): Promise<OutboxEntry | undefined>;
  /**
   * Optional: one iteration shard as stored (its own document or row), undefined when absent or
   * expired. The shard tests that need it are skipped, and say so, where a harness lacks it.
   */
  rawShard?(iterationId: string, shardIndex: number): Promise<ShardProgress | undefined>;
}

export interface ContractHarness {
  stores: Stores;
  raw: RawBackend;
  /** `count` Stores over the same data, each on its own connection where the backend has connections. */
  contenders(count: number): Promise<Stores[]>;
  cleanup(): Promise<void>;
}

const HOUR = 3_600_000;
const STATUSES = TASK_STATUSES;

/** Records compare as JSON: a property holding undefined and an absent one are the same thing. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The test's own reading of TaskQuery's filters. */
function matchesQuery(record: TaskRecord, query: TaskQuery): boolean {
  return (
    (!query.status || record.status === query.status) &&
    (!query.queue || record.queue === query.queue) &&
    (!query.taskName || record.taskName === query.taskName) &&
    (!query.reference || record.reference === query.reference) &&
    (!query.iterationId || record.iterationId === query.iterationId)
  );
}

function unique(label: string): string {
  return `${label}-${randomUUID()}`;
}

/** A queued record with every required field; the id comes from the store when it picks ids. */
function newRecord(stores: Stores, fields: Partial<TaskRecord> = {}): TaskRecord {
  const now = fields.createdAt ?? Date.now();
  return {
    id: stores.state.newTaskId?.(fields.reference) ?? randomUUID(),
    taskName: 'contract.task',
    queue: 'default',
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta: now,
    attempts: 0,
    executionCount: 0,
    payloadSize: 42,
    history: [],
    version: 1,
    expiresAt: now + HOUR,
    ...fields,
  };
}

function attempt(at: number, outcome: AttemptRecord['outcome'], extra: Partial<AttemptRecord> = {}): AttemptRecord {
  return { at, statusCode: outcome === 'succeeded' ? 200 : 500, outcome, durationMs: 12.345678901234567, ...extra };
}

function settleInput(owner: string, status: SettleInput['status'], now: number, extra: Partial<SettleInput> = {}): SettleInput {
  const outcome = status === 'succeeded' ? 'succeeded' : status === 'failed' ? 'failed' : 'retrying';
  return { owner, status, now, attempt: attempt(now - 5, outcome), expiresAt: now + 2 * HOUR, ...extra };
}

/** Poll until `check` holds; the deadline only bounds a failing test, it measures nothing. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 400; tries += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`still not true after waiting: ${what}`);
}

async function inBatches<T>(count: number, batch: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start);
    results.push(...(await Promise.all(Array.from({ length: size }, (_, k) => make(start + k)))));
  }
  return results;
}

/** An outbox entry as the engine writes one: the enqueue to make for `taskId`. */
function outboxEntry(taskId: string, createdAt: number, label = taskId): OutboxEntry {
  return {
    taskId,
    createdAt,
    request: {
      queue: 'default',
      taskId: `task-${label}`,
      scheduleTime: createdAt + 1000,
      dispatchDeadlineMs: 600_000,
      bodyBase64: Buffer.from(`body ${label}`).toString('base64'),
      headers: { 'content-type': 'application/json' },
      target: { kind: 'http', url: 'https://example.com/_ah/queue/deferred', oidc: { serviceAccountEmail: 'sa@p.iam.gserviceaccount.com' } },
    },
  };
}

/** Stores without a `transaction` runner fail the transaction tests with this. */
function transactionRunner(adapterName: string, stores: Stores): <T>(work: (tx: unknown) => Promise<T>) => Promise<T> {
  if (!stores.transaction) {
    assert.fail(
      `${adapterName}: the stores have no transaction(work) runner. Add one that commits a transaction of the backend when work resolves, ` +
        'then runs the staged afterCommit callbacks, and rolls back when work throws (see memoryStores).',
    );
  }
  const runner = stores as Required<Pick<Stores, 'transaction'>>;
  return (work) => runner.transaction(work);
}

/** Stage a defer in `tx` through the one TransactionHook of the stores that accepts it. */
async function stageIn(adapterName: string, stores: Stores, tx: unknown, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
  const hook: TransactionHook | undefined = stores.transactions.find((candidate) => candidate.accepts(tx));
  if (!hook) assert.fail(`${adapterName}: no TransactionHook in stores.transactions accepts the transaction that stores.transaction(work) hands to work.`);
  await hook.stage(tx, staged, afterCommit);
}

export interface ContractOptions {
  /** Records in the large paging test (default 10,000). */
  pagingRecords?: number;
  /**
   * Callers in the races on one record or reference (default 50); the shard races use at most
   * 32 shards, and at most this many callers. A backend whose contended rounds each cost a lock
   * wait (Google's emulator in Datastore mode: about 2 s) may scale it down.
   */
  raceCallers?: number;
  /** Each test's time limit, ms (default 60,000). */
  timeoutMs?: number;
}

function mochaGlobals(): MochaGlobals {
  const globals = globalThis as unknown as Partial<MochaGlobals>;
  if (typeof globals.describe !== 'function' || typeof globals.it !== 'function') {
    throw new Error('describeStoreContract runs inside mocha (or a runner with the same describe/it/before/after globals); call it from a test file.');
  }
  return globals as MochaGlobals;
}

/**
 * Declares the store contract suite for one adapter: call it from a mocha test file with a
 * harness that builds the stores and reads the backend directly.
 */
export function describeStoreContract(adapterName: string, makeHarness: () => Promise<ContractHarness>, options: ContractOptions = {}): void {
  const pagingRecords = options.pagingRecords ?? 10_000;
  const race = options.raceCallers ?? 50;
  const { describe, it, before, after } = mochaGlobals();

  describe(`store contract: ${adapterName}`, function () {
    this.timeout(options.timeoutMs ?? 60_000);
    let h: ContractHarness;
    before(async function () {
      h = await makeHarness();
    });
    after(async function () {
      await h?.cleanup();
    });

    /** Create a record and check it was written as given. */
    async function created(fields: Partial<TaskRecord> = {}, stores: Stores = h.stores): Promise<TaskRecord> {
      const record = newRecord(stores, fields);
      const result = await stores.state.createTask(record, record.createdAt);
      assert.deepEqual(result, { created: true });
      return record;
    }

    async function running(owner: string, fields: Partial<TaskRecord> = {}): Promise<TaskRecord> {
      const record = await created(fields);
      const outcome = await h.stores.state.acquireLease(record.id, { owner, now: record.createdAt + 1, leaseMs: 60_000, executionCount: 0 });
      assert.equal(outcome.kind, 'acquired');
      return outcome.kind === 'acquired' ? outcome.record : record;
    }

    describe('records', function () {
      it('createTask stores the record exactly as given, with every field', async function () {
        const now = Date.now();
        const record = newRecord(h.stores, {
          taskName: 'émails.send ✉',
          queue: 'mail-queue',
          cloudTaskName: 'projects/p/locations/l/queues/mail-queue/tasks/t-1',
          reference: unique('ref'),
          uniqueUntil: now + 10_000,
          startedAt: now - 20,
          finishedAt: now - 10,
          attempts: 3,
          executionCount: 2,
          maxAttempts: 7,
          lastError: { message: 'boom\nsecond line', name: 'TypeError', code: 'E_BOOM', stack: 'TypeError: boom\n    at x (y.js:1:2)' },
          durationMs: 0.1 + 0.2,
          payloadSize: 123_456,
          argsJson: '[{"$date":"2026-01-01T00:00:00.000Z"},"tab\\there",1e21]',
          payloadRef: 'payload-1',
          iterationId: unique('iteration'),
          shardIndex: 4,
          history: [attempt(now - 100, 'retrying', { error: { message: 'first' }, retryCount: 0 }), attempt(now - 50, 'failed')],
          leaseOwner: 'worker-a',
          leaseUntil: now + 5_000,
          version: 9,
          status: 'retrying',
        });
        assert.deepEqual(await h.stores.state.createTask(record, now), { created: true });
        assert.deepEqual(await h.raw.rawTask(record.id), plain(record));
        assert.deepEqual(plain(await h.stores.state.getTask(record.id)), plain(record));
        assert.equal(await h.raw.rawTaskExpiry(record.id), record.expiresAt);
      });

      it('createTask refuses an id that is taken and leaves the record alone', async function () {
        const record = await created();
        const other = { ...record, taskName: 'other', reference: undefined };
        await assert.rejects(h.stores.state.createTask(other, record.createdAt), (error: unknown) => {
          return error instanceof CloudDeferError && error.code === 'TASK_ALREADY_EXISTS';
        });
        assert.deepEqual(await h.raw.rawTask(record.id), plain(record));
      });

      it('an unknown id reads as undefined', async function () {
        assert.equal(await h.stores.state.getTask(unique('missing')), undefined);
        assert.deepEqual(await h.stores.state.acquireLease(unique('missing'), { owner: 'x', now: Date.now(), leaseMs: 1000, executionCount: 0 }), {
          kind: 'missing',
        });
        assert.equal(await h.stores.state.settle(unique('missing'), settleInput('x', 'succeeded', Date.now())), undefined);
        assert.equal(await h.stores.state.transition(unique('missing'), ['queued'], 'cancelled', {}, Date.now()), undefined);
        await h.stores.state.deleteTask(unique('missing'));
      });

      it('deleteTask removes the record and frees its reference', async function () {
        const reference = unique('ref');
        const record = await created({ reference });
        await h.stores.state.deleteTask(record.id);
        assert.equal(await h.raw.rawTask(record.id), undefined);
        assert.equal(await h.stores.state.getTask(record.id), undefined);
        assert.equal(await h.stores.state.findByReference(reference), undefined);
        const next = await created({ reference });
        assert.equal((await h.stores.state.findByReference(reference))?.id, next.id);
      });
    });

    describe('reference reservation', function () {
      it(`${race} concurrent createTask with one reference: exactly one is created, the others get it back`, async function () {
        const reference = unique('ref');
        const contenders = await h.contenders(race);
        const now = Date.now();
        const records = contenders.map((stores) => newRecord(stores, { reference, createdAt: now }));
        const results = await Promise.all(records.map((record, i) => contenders[i]!.state.createTask(record, now)));
        const winners = records.filter((_, i) => results[i]!.created);
        assert.equal(winners.length, 1, 'exactly one createTask wins');
        const winner = winners[0]!;
        for (const result of results) {
          if (!result.created) assert.equal(result.existing.id, winner.id);
        }
        assert.deepEqual(await h.raw.rawTask(winner.id), plain(winner));
        for (const record of records) if (record !== winner) assert.equal(await h.raw.rawTask(record.id), undefined);
        assert.equal((await h.stores.state.findByReference(reference))?.id, winner.id);
      });

      it('holds the reference until uniqueUntil passes', async function () {
        const reference = unique('ref');
        const first = await created({ reference, uniqueUntil: Date.now() + 1_000 });
        const second = newRecord(h.stores, { reference });
        const blocked = await h.stores.state.createTask(second, first.uniqueUntil! - 1);
        assert.equal(blocked.created, false);
        assert.equal(!blocked.created && blocked.existing.id, first.id);
        assert.equal(await h.raw.rawTask(second.id), undefined);
        assert.deepEqual(await h.stores.state.createTask(second, first.uniqueUntil!), { created: true });
        assert.deepEqual(await h.raw.rawTask(second.id), plain(second));
        assert.equal((await h.stores.state.findByReference(reference))?.id, second.id);
        assert.deepEqual(await h.raw.rawTask(first.id), plain(first), 'the earlier record is kept');
      });

      const finishers: Array<[string, (record: TaskRecord) => Promise<void>]> = [
        ['settles succeeded', async (record) => settleOnce(record, 'succeeded')],
        ['settles failed', async (record) => settleOnce(record, 'failed')],
        [
          'is cancelled',
          async (record) => {
            assert.ok(await h.stores.state.transition(record.id, ['queued', 'retrying'], 'cancelled', {}, Date.now()));
          },
        ],
      ];
      async function settleOnce(record: TaskRecord, status: 'succeeded' | 'failed'): Promise<void> {
        const now = Date.now();
        const lease = await h.stores.state.acquireLease(record.id, { owner: 'finisher', now, leaseMs: 60_000, executionCount: 0 });
        assert.equal(lease.kind, 'acquired');
        assert.ok(await h.stores.state.settle(record.id, settleInput('finisher', status, now + 1)));
      }

      for (const [how, finish] of finishers) {
        it(`without uniqueUntil, holds the reference until the holder ${how}`, async function () {
          const reference = unique('ref');
          const holder = await created({ reference });
          const far = Date.now() + 1_000 * HOUR;
          const early = await h.stores.state.createTask(newRecord(h.stores, { reference }), far);
          assert.equal(early.created, false, 'an unfinished holder without uniqueUntil blocks forever');
          await finish(holder);
          const next = newRecord(h.stores, { reference });
          assert.deepEqual(await h.stores.state.createTask(next, Date.now()), { created: true });
          assert.equal((await h.stores.state.findByReference(reference))?.id, next.id);
        });
      }

      it('a holder that settles retrying still holds the reference', async function () {
        const reference = unique('ref');
        const holder = await created({ reference });
        const now = Date.now();
        assert.equal((await h.stores.state.acquireLease(holder.id, { owner: 'w', now, leaseMs: 60_000, executionCount: 0 })).kind, 'acquired');
        assert.equal((await h.stores.state.settle(holder.id, settleInput('w', 'retrying', now + 1)))?.status, 'retrying');
        const again = await h.stores.state.createTask(newRecord(h.stores, { reference }), now + 2);
        assert.equal(!again.created && again.existing.id, holder.id);
      });

      it('a rerun holder (finished, then queued again) holds its reference again', async function () {
        const reference = unique('ref');
        const holder = await created({ reference });
        await h.stores.state.transition(holder.id, ['queued'], 'cancelled', {}, Date.now());
        assert.ok(await h.stores.state.transition(holder.id, ['cancelled'], 'queued', {}, Date.now()));
        const again = await h.stores.state.createTask(newRecord(h.stores, { reference }), Date.now());
        assert.equal(!again.created && again.existing.id, holder.id);
      });

      it(`${race} concurrent createTask on a freed reference: exactly one takes it over`, async function () {
        const reference = unique('ref');
        const holder = await created({ reference });
        await h.stores.state.transition(holder.id, ['queued'], 'cancelled', {}, Date.now());
        const contenders = await h.contenders(race);
        const now = Date.now();
        const records = contenders.map((stores) => newRecord(stores, { reference, createdAt: now }));
        const results = await Promise.all(records.map((record, i) => contenders[i]!.state.createTask(record, now)));
        const winners = records.filter((_, i) => results[i]!.created);
        assert.equal(winners.length, 1);
        for (const result of results) if (!result.created) assert.equal(result.existing.id, winners[0]!.id);
        assert.equal((await h.stores.state.findByReference(reference))?.id, winners[0]!.id);
      });
    });

    describe('execution guard', function () {
      it('20 concurrent acquireLease on one task: exactly one acquires, the others are busy', async function () {
        const record = await created();
        const contenders = await h.contenders(20);
        const now = Date.now();
        const outcomes = await Promise.all(
          contenders.map((stores, i) => stores.state.acquireLease(record.id, { owner: `owner-${i}`, now, leaseMs: 60_000, executionCount: 1 })),
        );
        const acquired = outcomes.flatMap((outcome, i) => (outcome.kind === 'acquired' ? [i] : []));
        assert.equal(acquired.length, 1, 'exactly one owner');
        assert.deepEqual(new Set(outcomes.map((outcome) => outcome.kind)), new Set(['acquired', 'busy']));
        const stored = await h.raw.rawTask(record.id);
        assert.equal(stored?.status, 'running');
        assert.equal(stored?.leaseOwner, `owner-${acquired[0]}`);
        assert.equal(stored?.leaseUntil, now + 60_000);
        assert.equal(stored?.attempts, 1);
        assert.equal(stored?.version, record.version + 1);
      });

      it('the acquired record is what was written: running, lease, attempts + 1, startedAt, executionCount', async function () {
        const record = await created({ status: 'retrying', attempts: 2 });
        const now = record.createdAt + 100;
        const outcome = await h.stores.state.acquireLease(record.id, { owner: 'w1', now, leaseMs: 500, executionCount: 3 });
        assert.equal(outcome.kind, 'acquired');
        const expected = {
          ...record,
          status: 'running',
          leaseOwner: 'w1',
          leaseUntil: now + 500,
          attempts: 3,
          executionCount: 3,
          startedAt: now,
          updatedAt: now,
          version: record.version + 1,
        };
        assert.deepEqual(plain(outcome.kind === 'acquired' && outcome.record), plain(expected));
        assert.deepEqual(await h.raw.rawTask(record.id), plain(expected));
      });

      it('is busy while the lease lives; after it expires another owner takes over and the stale owner cannot settle', async function () {
        const record = await created();
        const t0 = record.createdAt + 10;
        const leaseMs = 1_000;
        assert.equal((await h.stores.state.acquireLease(record.id, { owner: 'crashed', now: t0, leaseMs, executionCount: 0 })).kind, 'acquired');
        const busy = await h.stores.state.acquireLease(record.id, { owner: 'second', now: t0 + leaseMs - 1, leaseMs, executionCount: 1 });
        assert.equal(busy.kind, 'busy');
        assert.equal(busy.kind === 'busy' && busy.record.leaseOwner, 'crashed');

        const takeover = await h.stores.state.acquireLease(record.id, { owner: 'second', now: t0 + leaseMs + 1, leaseMs, executionCount: 1 });
        assert.equal(takeover.kind, 'acquired');
        assert.equal(takeover.kind === 'acquired' && takeover.record.attempts, 2);
        assert.equal(takeover.kind === 'acquired' && takeover.record.startedAt, t0, 'startedAt keeps the first start');

        const before = await h.raw.rawTask(record.id);
        assert.equal(await h.stores.state.settle(record.id, settleInput('crashed', 'succeeded', t0 + leaseMs + 5)), undefined);
        assert.deepEqual(await h.raw.rawTask(record.id), before, 'the stale settle changed nothing');

        const settled = await h.stores.state.settle(record.id, settleInput('second', 'succeeded', t0 + leaseMs + 6));
        assert.equal(settled?.status, 'succeeded');
      });

      it('the owner asking again (a lost reply) gets its own lease back, changing nothing', async function () {
        const record = await created();
        const now = record.createdAt + 10;
        const first = await h.stores.state.acquireLease(record.id, { owner: 'w1', now, leaseMs: 1_000, executionCount: 0 });
        assert.equal(first.kind, 'acquired');
        const stored = await h.raw.rawTask(record.id);
        const again = await h.stores.state.acquireLease(record.id, { owner: 'w1', now: now + 5, leaseMs: 1_000, executionCount: 0 });
        assert.equal(again.kind, 'acquired');
        assert.deepEqual(await h.raw.rawTask(record.id), stored, 'attempts and lease unchanged');
        const other = await h.stores.state.acquireLease(record.id, { owner: 'w2', now: now + 6, leaseMs: 1_000, executionCount: 0 });
        assert.equal(other.kind, 'busy');
      });

      it('20 concurrent takeovers of an expired lease: exactly one acquires', async function () {
        const record = await created();
        const t0 = record.createdAt + 10;
        await h.stores.state.acquireLease(record.id, { owner: 'crashed', now: t0, leaseMs: 100, executionCount: 0 });
        const contenders = await h.contenders(20);
        const outcomes = await Promise.all(
          contenders.map((stores, i) => stores.state.acquireLease(record.id, { owner: `owner-${i}`, now: t0 + 200, leaseMs: 60_000, executionCount: 1 })),
        );
        assert.equal(outcomes.filter((outcome) => outcome.kind === 'acquired').length, 1);
        assert.equal((await h.raw.rawTask(record.id))?.attempts, 2);
      });

      it('the store that created a task leases it on what is stored now: busy, finished or missing after another store changed it', async function () {
        // The creating store may decide the lease on the record as it created it; another
        // instance's writes in between must still win (its own store object, own connection).
        const [other] = await h.contenders(1);
        const lease = (id: string, owner: string, now: number) => h.stores.state.acquireLease(id, { owner, now, leaseMs: 60_000, executionCount: 1 });
        const otherLease = (id: string, now: number) => other!.state.acquireLease(id, { owner: 'other', now, leaseMs: 60_000, executionCount: 1 });

        const leased = await created();
        assert.equal((await otherLease(leased.id, leased.createdAt + 1)).kind, 'acquired');
        const busy = await lease(leased.id, 'creator', leased.createdAt + 2);
        assert.equal(busy.kind, 'busy');
        assert.equal((await h.raw.rawTask(leased.id))?.leaseOwner, 'other');

        const settled = await created();
        await otherLease(settled.id, settled.createdAt + 1);
        await other!.state.settle(settled.id, settleInput('other', 'succeeded', settled.createdAt + 2));
        const before = await h.raw.rawTask(settled.id);
        assert.equal((await lease(settled.id, 'creator', settled.createdAt + 3)).kind, 'finished');
        assert.deepEqual(await h.raw.rawTask(settled.id), before, 'the finished record is left as it was');

        const cancelled = await created();
        await other!.state.transition(cancelled.id, ['queued'], 'cancelled', {}, cancelled.createdAt + 1);
        assert.equal((await lease(cancelled.id, 'creator', cancelled.createdAt + 2)).kind, 'finished');
        assert.equal((await h.raw.rawTask(cancelled.id))?.status, 'cancelled');

        const deleted = await created();
        await other!.state.deleteTask(deleted.id);
        assert.equal((await lease(deleted.id, 'creator', deleted.createdAt + 1)).kind, 'missing');
        assert.equal(await h.raw.rawTask(deleted.id), undefined, 'nothing was written back');

        const untouched = await created();
        const mine = await lease(untouched.id, 'creator', untouched.createdAt + 1);
        assert.equal(mine.kind, 'acquired');
        assert.equal((await h.raw.rawTask(untouched.id))?.leaseOwner, 'creator');
        assert.equal((await h.raw.rawTask(untouched.id))?.version, untouched.version + 1);
      });

      for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
        it(`a ${status} task answers finished and is left unchanged`, async function () {
          const record = await created({ status, finishedAt: Date.now() });
          const outcome = await h.stores.state.acquireLease(record.id, { owner: 'w', now: Date.now(), leaseMs: 1_000, executionCount: 1 });
          assert.equal(outcome.kind, 'finished');
          assert.deepEqual(plain(outcome.kind === 'finished' && outcome.record), plain(record));
          assert.deepEqual(await h.raw.rawTask(record.id), plain(record));
        });
      }

      it('settle by the owner writes the outcome, the attempt, the retention and clears the lease', async function () {
        const lease = await running('owner');
        const now = lease.createdAt + 50;
        const error = { message: 'nope', name: 'Error', stack: 'Error: nope' };
        const input = settleInput('owner', 'failed', now, { error, expiresAt: now + 3 * HOUR });
        const settled = await h.stores.state.settle(lease.id, input);
        const expected = {
          ...lease,
          status: 'failed',
          leaseOwner: undefined,
          leaseUntil: undefined,
          durationMs: input.attempt.durationMs,
          updatedAt: now,
          expiresAt: input.expiresAt,
          lastError: error,
          history: [input.attempt],
          finishedAt: now,
          version: lease.version + 1,
        };
        assert.deepEqual(plain(settled), plain(expected));
        assert.deepEqual(await h.raw.rawTask(lease.id), plain(expected));
        assert.equal(await h.raw.rawTaskExpiry(lease.id), input.expiresAt);
      });

      it('settle retrying keeps finishedAt unset and the task can be leased again', async function () {
        const lease = await running('owner');
        const settled = await h.stores.state.settle(lease.id, settleInput('owner', 'retrying', lease.createdAt + 10));
        assert.equal(settled?.status, 'retrying');
        assert.equal(settled?.finishedAt, undefined);
        const again = await h.stores.state.acquireLease(lease.id, { owner: 'next', now: lease.createdAt + 20, leaseMs: 1_000, executionCount: 2 });
        assert.equal(again.kind, 'acquired');
        assert.equal(again.kind === 'acquired' && again.record.attempts, 2);
      });

      it(`${race} concurrent settles by the owner: exactly one is recorded`, async function () {
        const lease = await running('owner');
        const contenders = await h.contenders(race);
        const results = await Promise.all(
          contenders.map((stores, i) => stores.state.settle(lease.id, settleInput('owner', i % 2 ? 'succeeded' : 'retrying', lease.createdAt + 10 + i))),
        );
        const accepted = results.filter((result) => result !== undefined);
        assert.equal(accepted.length, 1);
        const stored = await h.raw.rawTask(lease.id);
        assert.equal(stored?.history.length, 1);
        assert.deepEqual(stored, plain(accepted[0]));
      });

      it('keeps the newest MAX_HISTORY attempts', async function () {
        const record = await created();
        const attempts: AttemptRecord[] = [];
        let now = record.createdAt;
        for (let i = 0; i < MAX_HISTORY + 5; i += 1) {
          now += 10;
          assert.equal((await h.stores.state.acquireLease(record.id, { owner: `w${i}`, now, leaseMs: 5, executionCount: i })).kind, 'acquired');
          const input = settleInput(`w${i}`, 'retrying', now + 1, { attempt: attempt(now, 'retrying', { retryCount: i, durationMs: i }) });
          attempts.push(input.attempt);
          assert.ok(await h.stores.state.settle(record.id, input));
        }
        const stored = await h.raw.rawTask(record.id);
        assert.equal(stored?.history.length, MAX_HISTORY);
        assert.deepEqual(stored?.history, plain(attempts.slice(-MAX_HISTORY)));
        assert.deepEqual(plain((await h.stores.state.getTask(record.id))?.history), plain(attempts.slice(-MAX_HISTORY)));
      });
    });

    describe('lifecycle transitions', function () {
      it('makes every move TRANSITIONS allows and refuses every other one without writing', async function () {
        const now = Date.now();
        const cases = STATUSES.flatMap((from) => STATUSES.map((to) => ({ from, to })));
        await Promise.all(
          cases.map(async ({ from, to }) => {
            const fields: Partial<TaskRecord> = { status: from };
            if (from === 'running') Object.assign(fields, { leaseOwner: 'w', leaseUntil: now + HOUR });
            if (isFinished(from)) fields.finishedAt = now - 1;
            const record = await created(fields);
            const moved = await h.stores.state.transition(record.id, [from], to, {}, now + 5);
            if (!canTransition(from, to)) {
              assert.equal(moved, undefined, `${from} -> ${to} must be refused`);
              assert.deepEqual(await h.raw.rawTask(record.id), plain(record), `${from} -> ${to} must not write`);
              return;
            }
            const expected: TaskRecord = { ...record, status: to, updatedAt: now + 5, version: record.version + 1 };
            if (to !== 'running') Object.assign(expected, { leaseOwner: undefined, leaseUntil: undefined });
            // A run moved on by anyone but its own settle was cut short.
            if (from === 'running' && to !== 'running') expected.interruptedRuns = 1;
            if (isFinished(to)) expected.finishedAt = record.finishedAt ?? now + 5;
            assert.deepEqual(plain(moved), plain(expected), `${from} -> ${to}`);
            assert.deepEqual(await h.raw.rawTask(record.id), plain(expected), `${from} -> ${to} as stored`);
          }),
        );
      });

      it('refuses a move from a status the record is no longer in (a stale writer)', async function () {
        const record = await created();
        await h.stores.state.acquireLease(record.id, { owner: 'w', now: record.createdAt + 1, leaseMs: 60_000, executionCount: 0 });
        const before = await h.raw.rawTask(record.id);
        assert.equal(await h.stores.state.transition(record.id, ['queued'], 'cancelled', {}, Date.now()), undefined);
        assert.deepEqual(await h.raw.rawTask(record.id), before);
      });

      it(`${race} concurrent conflicting transitions from queued: exactly one wins and the others change nothing`, async function () {
        const record = await created();
        const contenders = await h.contenders(race);
        const targets: TaskStatus[] = ['cancelled', 'failed', 'succeeded', 'running'];
        const results = await Promise.all(
          contenders.map((stores, i) =>
            stores.state.transition(record.id, ['queued'], targets[i % targets.length]!, { cloudTaskName: `writer-${i}` }, record.createdAt + i),
          ),
        );
        const winners = results.flatMap((result, i) => (result ? [i] : []));
        assert.equal(winners.length, 1);
        const stored = await h.raw.rawTask(record.id);
        assert.equal(stored?.status, targets[winners[0]! % targets.length]);
        assert.equal(stored?.cloudTaskName, `writer-${winners[0]}`);
        assert.equal(stored?.version, record.version + 1);
      });

      it('applies the patch, clears fields patched to undefined, keeps a given finishedAt', async function () {
        const now = Date.now();
        const record = await created({ lastError: { message: 'old' }, uniqueUntil: now + HOUR, status: 'retrying' });
        const moved = await h.stores.state.transition(
          record.id,
          ['queued', 'retrying'],
          'failed',
          { lastError: undefined, uniqueUntil: undefined, cloudTaskName: 'projects/p/tasks/x', eta: now + 7, finishedAt: now - 3, expiresAt: now + 5 * HOUR },
          now,
        );
        const expected = {
          ...record,
          lastError: undefined,
          uniqueUntil: undefined,
          cloudTaskName: 'projects/p/tasks/x',
          eta: now + 7,
          finishedAt: now - 3,
          expiresAt: now + 5 * HOUR,
          status: 'failed',
          updatedAt: now,
          version: record.version + 1,
        };
        assert.deepEqual(plain(moved), plain(expected));
        assert.deepEqual(await h.raw.rawTask(record.id), plain(expected));
        assert.equal(await h.raw.rawTaskExpiry(record.id), now + 5 * HOUR);
      });
    });

    describe('retention', function () {
      it('a record and its reference expire at expiresAt', async function () {
        const reference = unique('ref');
        const queue = unique('q');
        const record = await created({ reference, queue, expiresAt: Date.now() + 150 });
        const deadline = await h.raw.rawTaskExpiry(record.id);
        // Undefined only if this machine stalled past the deadline already.
        if (deadline !== undefined) assert.equal(deadline, record.expiresAt);
        await eventually('the record expires', async () => (await h.stores.state.getTask(record.id)) === undefined);
        assert.equal(await h.raw.rawTask(record.id), undefined);
        assert.equal(await h.raw.rawTaskExpiry(record.id), undefined);
        assert.equal(await h.stores.state.findByReference(reference), undefined);
        assert.deepEqual((await h.stores.state.listTasks({ queue })).records, []);
        assert.equal((await h.stores.state.acquireLease(record.id, { owner: 'w', now: Date.now(), leaseMs: 10, executionCount: 0 })).kind, 'missing');
        const next = newRecord(h.stores, { reference });
        assert.deepEqual(await h.stores.state.createTask(next, Date.now()), { created: true }, 'an expired holder frees the reference');
      });

      it('settle and transition move the retention deadline', async function () {
        const lease = await running('owner');
        const settleAt = lease.createdAt + 20;
        await h.stores.state.settle(lease.id, settleInput('owner', 'succeeded', settleAt, { expiresAt: settleAt + 4 * HOUR }));
        assert.equal(await h.raw.rawTaskExpiry(lease.id), settleAt + 4 * HOUR);
        await h.stores.state.transition(lease.id, ['succeeded'], 'queued', { expiresAt: settleAt + 6 * HOUR }, settleAt + 30);
        assert.equal(await h.raw.rawTaskExpiry(lease.id), settleAt + 6 * HOUR);
        assert.equal((await h.raw.rawTask(lease.id))?.expiresAt, settleAt + 6 * HOUR);
      });

      it('a payload expires after its time-to-live', async function () {
        const id = unique('payload');
        const before = Date.now();
        await h.stores.payloads.put(id, Buffer.from('short-lived'), 150);
        const after = Date.now();
        const deadline = await h.raw.rawPayloadExpiry(id);
        if (deadline !== undefined) {
          assert.ok(deadline >= before + 150 && deadline <= after + 151, `payload deadline ${deadline} within the put call + 150 ms`);
        }
        await eventually('the payload expires', async () => (await h.stores.payloads.get(id)) === undefined);
        assert.equal(await h.raw.rawPayload(id), undefined);
      });

      it('past their expiry, records, references and payloads read as absent everywhere', async function () {
        const queue = unique('q');
        const expiresAt = Date.now() + 150;
        const records = await Promise.all(Array.from({ length: 20 }, (_, i) => created({ queue, expiresAt, ...(i % 2 ? { reference: unique('ref') } : {}) })));
        const payloads = Array.from({ length: 5 }, () => unique('payload'));
        for (const id of payloads) await h.stores.payloads.put(id, Buffer.from(`expiring ${id}`), 150);
        const live = await created({ queue, expiresAt: Date.now() + HOUR });
        await eventually('every expired record reads as absent', async () => (await h.raw.rawTask(records[0]!.id)) === undefined);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt + 50 - Date.now())));
        for (const record of records) {
          assert.equal(await h.raw.rawTask(record.id), undefined, 'raw read: gone or absent');
          assert.equal(await h.stores.state.getTask(record.id), undefined);
          if (record.reference !== undefined) assert.equal(await h.stores.state.findByReference(record.reference), undefined);
        }
        await eventually('every expired payload reads as absent', async () => (await h.stores.payloads.get(payloads[4]!)) === undefined);
        for (const id of payloads) {
          assert.equal(await h.stores.payloads.get(id), undefined);
          assert.equal(await h.raw.rawPayload(id), undefined);
        }
        assert.deepEqual(
          (await h.stores.state.listTasks({ queue })).records.map((r) => r.id),
          [live.id],
        );
      });

      it('sweepExpired (stores without native expiry; skipped on the others) removes expired records and payloads, counts them, keeps live ones', async function () {
        const sweep = h.stores.sweepExpired;
        if (!sweep) this.skip(); // Stores with native expiry (TTL) have nothing to sweep.
        const queue = unique('q');
        const expired = await Promise.all(
          Array.from({ length: 12 }, (_, i) => created({ queue, expiresAt: Date.now() + 100, ...(i % 3 === 0 ? { reference: unique('ref') } : {}) })),
        );
        const payload = unique('payload');
        await h.stores.payloads.put(payload, Buffer.from('expiring'), 100);
        const live = await created({ queue, expiresAt: Date.now() + HOUR });
        const livePayload = unique('payload');
        await h.stores.payloads.put(livePayload, Buffer.from('kept'), HOUR);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const first = await sweep.call(h.stores, 5);
        assert.ok(first >= 1 && first <= 5, `a sweep of limit 5 removed ${first}: between 1 and 5`);
        let removed = first;
        let last = first;
        for (let round = 0; round < 100 && last > 0; round += 1) {
          last = await sweep.call(h.stores, 1000);
          removed += last;
        }
        assert.equal(last, 0, 'sweeping again finds nothing left');
        assert.ok(removed >= expired.length + 1, `counted ${removed} removals for ${expired.length} records and 1 payload`);
        for (const record of expired) assert.equal(await h.raw.rawTask(record.id), undefined);
        assert.equal(await h.raw.rawPayload(payload), undefined);
        assert.equal((await h.raw.rawTask(live.id))?.id, live.id, 'a live record is kept');
        assert.ok(await h.raw.rawPayload(livePayload), 'a live payload is kept');
        assert.deepEqual(
          (await h.stores.state.listTasks({ queue })).records.map((r) => r.id),
          [live.id],
        );
      });
    });

    describe('iteration shards', function () {
      /** A new iteration record, not yet split (startIteration sets the shard count). */
      function iteration(shardCount: number): IterationRecord {
        const now = Date.now();
        return {
          id: unique('it'),
          callbackTask: 'contract.callback',
          finalizeTask: 'contract.finalize',
          queue: 'default',
          shardCount,
          status: 'splitting',
          createdAt: now,
          updatedAt: now,
          shards: [],
          deleteMarker: false,
          expiresAt: now + HOUR,
        };
      }

      /** An iteration split into `shardCount` shards, as deferIteration's start task leaves it. */
      async function started(shardCount: number): Promise<IterationRecord> {
        const record = iteration(shardCount);
        await h.stores.iterations!.createIteration({ ...record, shardCount: 0 });
        await h.stores.iterations!.startIteration(record.id, shardCount, Date.now());
        return record;
      }

      const onceShards = Math.min(32, race);
      it(`${onceShards} concurrent completeShard, one per shard: exactly one hears allDone; a repeat of each changes nothing`, async function () {
        const iterations = h.stores.iterations;
        if (!iterations) this.skip(); // Stores without deferIteration support.
        const shardCount = onceShards;
        const record = await started(shardCount);
        const contenders = await h.contenders(shardCount);
        const results = await Promise.all(contenders.map((stores, i) => stores.iterations!.completeShard(record.id, i, Date.now())));
        const finishers = results.flatMap((result, i) => (result.allDone ? [i] : []));
        assert.equal(finishers.length, 1, `exactly one completion hears allDone (heard by shards ${finishers.join(', ')})`);
        assert.equal(results[finishers[0]!]!.shardsDone, shardCount, 'allDone comes with every shard counted');
        for (const result of results)
          assert.ok(result.shardsDone >= 1 && result.shardsDone <= shardCount, `shardsDone ${result.shardsDone} within 1..${shardCount}`);
        const stored = await iterations.getIteration(record.id);
        assert.equal(stored?.shards.length, shardCount);
        assert.ok(
          stored?.shards.every((shard) => shard.done && shard.finishedAt !== undefined),
          'every shard is marked done',
        );

        const repeats = await Promise.all(contenders.map((stores, i) => stores.iterations!.completeShard(record.id, i, Date.now() + 1)));
        assert.deepEqual(
          repeats.map((r) => r.allDone),
          results.map((r) => r.allDone),
          'a repeat hears what the first call heard: only the finisher (a redelivery) hears allDone again',
        );
        for (const repeat of repeats) assert.ok(repeat.shardsDone <= shardCount, 'a repeat never counts a shard twice');
        assert.deepEqual(plain(await iterations.getIteration(record.id)), plain(stored), 'a repeat writes nothing');
        await iterations.deleteIteration(record.id);
        assert.equal(await iterations.getIteration(record.id), undefined);
      });

      const twiceShards = Math.min(32, Math.floor(race / 2));
      it(`${2 * twiceShards} concurrent completeShard, each of ${twiceShards} shards twice: allDone only for one shard, each shard done once`, async function () {
        const iterations = h.stores.iterations;
        if (!iterations) this.skip();
        const shardCount = twiceShards;
        const record = await started(shardCount);
        const contenders = await h.contenders(2 * shardCount);
        const results = await Promise.all(contenders.map((stores, i) => stores.iterations!.completeShard(record.id, i % shardCount, Date.now())));
        const finishingShards = new Set(results.flatMap((result, i) => (result.allDone ? [i % shardCount] : [])));
        assert.equal(finishingShards.size, 1, 'every allDone belongs to one shard (its second call may hear it too)');
        for (const result of results) assert.ok(result.shardsDone >= 1 && result.shardsDone <= shardCount);
        const stored = await iterations.getIteration(record.id);
        assert.ok(stored?.shards.every((shard) => shard.done));
        await iterations.deleteIteration(record.id);
      });

      it('completed shards are done in raw reads of their own documents (skipped where the harness has no rawShard)', async function () {
        const iterations = h.stores.iterations;
        const rawShard = h.raw.rawShard;
        if (!iterations || !rawShard) this.skip();
        const shardCount = 8;
        const record = await started(shardCount);
        const contenders = await h.contenders(shardCount - 1);
        await Promise.all(contenders.map((stores, i) => stores.iterations!.completeShard(record.id, i, Date.now())));
        for (let i = 0; i < shardCount - 1; i += 1) assert.equal((await rawShard.call(h.raw, record.id, i))?.done, true, `shard ${i} done as stored`);
        assert.equal((await rawShard.call(h.raw, record.id, shardCount - 1))?.done, false, 'the shard not completed is not done');
        assert.deepEqual(await iterations.completeShard(record.id, shardCount - 1, Date.now()), { allDone: true, shardsDone: shardCount });
        assert.equal((await rawShard.call(h.raw, record.id, shardCount - 1))?.done, true);
        await iterations.deleteIteration(record.id);
        assert.equal(await rawShard.call(h.raw, record.id, 0), undefined, 'deleting the iteration removes its shards');
      });

      it('concurrent progress on different shards loses no update', async function () {
        const iterations = h.stores.iterations;
        if (!iterations) this.skip();
        const shardCount = 4;
        const record = iteration(shardCount);
        await iterations.createIteration({ ...record, shardCount: 0 });
        await iterations.startIteration(record.id, shardCount, Date.now());
        const contenders = await h.contenders(20);
        await Promise.all(
          contenders.map((stores, i) =>
            stores.iterations!.recordShardProgress(record.id, i % shardCount, { processedDelta: 3, errorsDelta: i % 2, now: Date.now() }),
          ),
        );
        const stored = await iterations.getIteration(record.id);
        assert.deepEqual(
          stored?.shards.map((shard) => shard.processed),
          [15, 15, 15, 15],
        );
        assert.equal(
          stored?.shards.reduce((sum, shard) => sum + shard.errors, 0),
          10,
        );
        await iterations.deleteIteration(record.id);
      });
    });

    describe('transactions', function () {
      /** A defer as the engine stages it: the record, its outbox entry and, when asked, a payload. */
      function staged(stores: Stores, fields: Partial<TaskRecord> = {}, payload = false): StagedDefer {
        // As the engine does: a transactional defer's payload is named after its task (one Redis Cluster slot).
        const record = newRecord(stores, fields);
        return {
          record,
          outbox: outboxEntry(record.id, record.createdAt),
          ...(payload ? { payload: { id: record.id, data: randomBytes(300), ttlMs: HOUR } } : {}),
        };
      }

      it('a defer staged through stores.transaction(work) and its TransactionHook is written with its outbox entry; afterCommit runs once, after the commit', async function () {
        const run = transactionRunner(adapterName, h.stores);
        const defer = staged(h.stores, { reference: unique('ref') }, true);
        const seenAfterCommit: Array<{ record?: TaskRecord; outbox?: OutboxEntry }> = [];
        const result = await run(async (tx) => {
          await stageIn(adapterName, h.stores, tx, defer, async () => {
            seenAfterCommit.push({ record: await h.raw.rawTask(defer.record.id), outbox: await h.raw.rawOutbox(defer.record.id) });
          });
          assert.equal(await h.raw.rawTask(defer.record.id), undefined, 'nothing is visible before the commit');
          return 'work result';
        });
        assert.equal(result, 'work result', 'the runner returns what work returned');
        assert.equal(seenAfterCommit.length, 1, 'afterCommit ran exactly once');
        assert.deepEqual(seenAfterCommit[0]?.record, plain(defer.record), 'afterCommit ran after the record was committed');
        assert.deepEqual(seenAfterCommit[0]?.outbox, defer.outbox, 'and after its outbox entry was');
        assert.deepEqual(await h.raw.rawTask(defer.record.id), plain(defer.record));
        assert.deepEqual(await h.raw.rawOutbox(defer.record.id), defer.outbox);
        const bytes = await h.raw.rawPayload(defer.payload!.id);
        assert.ok(bytes && Buffer.from(bytes).equals(Buffer.from(defer.payload!.data)), 'the staged payload is stored');
        assert.equal((await h.stores.state.findByReference(defer.record.reference!))?.id, defer.record.id, 'the reference names the task');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(seenAfterCommit.length, 1, 'and never again');
      });

      it('when work throws, the runner rolls back: nothing is written and afterCommit never runs', async function () {
        const run = transactionRunner(adapterName, h.stores);
        const reference = unique('ref');
        const defer = staged(h.stores, { reference }, true);
        let afterCommits = 0;
        await assert.rejects(
          run(async (tx) => {
            await stageIn(adapterName, h.stores, tx, defer, async () => {
              afterCommits += 1;
            });
            throw new Error('the work failed');
          }),
          /the work failed/,
          'the work error reaches the caller',
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(afterCommits, 0, 'afterCommit never ran');
        assert.equal(await h.raw.rawTask(defer.record.id), undefined, 'no record');
        assert.equal(await h.raw.rawOutbox(defer.record.id), undefined, 'no outbox entry');
        assert.equal(await h.raw.rawPayload(defer.payload!.id), undefined, 'no payload');
        assert.equal(await h.stores.state.findByReference(reference), undefined, 'the reference stays free');
        const next = newRecord(h.stores, { reference });
        assert.deepEqual(await h.stores.state.createTask(next, Date.now()), { created: true });
      });

      it('20 concurrent transactions, each deferring with one reference: exactly one task is created and enqueued; the others write nothing', async function () {
        const reference = unique('ref');
        const contenders = await h.contenders(20);
        const defers = contenders.map((stores) => staged(stores, { reference }));
        const enqueued: number[] = [];
        // A losing transaction may commit without creating (the reference is held: a no-op, as outside
        // a transaction) or be refused by a backend that locks (Datastore mode: 20 transactions that
        // all read the hold can all time out), and then its caller runs it again, as callers do.
        const runWithRetries = async (stores: Stores, i: number): Promise<void> => {
          for (let round = 1; ; round += 1) {
            try {
              return await transactionRunner(
                adapterName,
                stores,
              )(async (tx) => {
                await stageIn(adapterName, stores, tx, defers[i]!, async () => {
                  enqueued.push(i);
                });
              });
            } catch (error) {
              if (round >= 5) throw error;
              await new Promise((resolve) => setTimeout(resolve, Math.random() * 200 * round));
            }
          }
        };
        const settled = await Promise.allSettled(contenders.map((stores, i) => runWithRetries(stores, i)));
        const committed = settled.filter((s) => s.status === 'fulfilled').length;
        assert.ok(committed >= 1, `at least one transaction commits (${20 - committed} failed)`);
        const stored = await Promise.all(defers.map((defer) => h.raw.rawTask(defer.record.id)));
        const winners = defers.flatMap((_, i) => (stored[i] ? [i] : []));
        assert.equal(winners.length, 1, `exactly one record is created (created: ${winners.length}; ${committed} of 20 transactions committed)`);
        assert.equal(settled[winners[0]!]!.status, 'fulfilled', 'the created one is from a transaction that committed');
        assert.deepEqual(enqueued, winners, 'only the created task is enqueued, once');
        assert.deepEqual(stored[winners[0]!], plain(defers[winners[0]!]!.record));
        for (const [i, defer] of defers.entries()) {
          assert.deepEqual(await h.raw.rawOutbox(defer.record.id), i === winners[0] ? defer.outbox : undefined, 'an outbox entry only for the created task');
        }
        assert.equal((await h.stores.state.findByReference(reference))?.id, defers[winners[0]!]!.record.id);
      });
    });

    describe('payloads', function () {
      it('round-trips a 5 MiB buffer byte for byte', async function () {
        const id = unique('payload');
        const data = randomBytes(5 * 1024 * 1024);
        for (let i = 0; i < 256; i += 1) data[i] = i; // every byte value, NUL and invalid UTF-8 included
        await h.stores.payloads.put(id, data, HOUR);
        const read = await h.stores.payloads.get(id);
        assert.ok(read);
        assert.equal(read.byteLength, data.byteLength);
        assert.ok(Buffer.from(read.buffer, read.byteOffset, read.byteLength).equals(data));
        const raw = await h.raw.rawPayload(id);
        assert.ok(raw && Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).equals(data), 'raw bytes equal');
        read[0] = 255 - read[0]!;
        const again = await h.stores.payloads.get(id);
        assert.equal(again?.[0], data[0], 'changing a returned buffer does not change the stored payload');
        await h.stores.payloads.delete(id);
        assert.equal(await h.stores.payloads.get(id), undefined);
        assert.equal(await h.raw.rawPayload(id), undefined);
      });

      it('an unknown payload reads as undefined and deleting it is a no-op', async function () {
        const id = unique('payload');
        assert.equal(await h.stores.payloads.get(id), undefined);
        await h.stores.payloads.delete(id);
      });
    });

    describe('outbox', function () {
      it('adds, lists oldest first before a time, and removes entries', async function () {
        const base = 1_000_000;
        const entries: OutboxEntry[] = [0, 1, 2].map((i) => outboxEntry(h.stores.state.newTaskId?.(undefined) ?? randomUUID(), base + i, String(i)));
        for (const entry of entries) await h.stores.state.addOutbox(entry);
        assert.deepEqual(await h.raw.rawOutbox(entries[1]!.taskId), entries[1]);
        assert.deepEqual(await h.stores.state.listOutbox(base + 2, 10), entries.slice(0, 2));
        assert.deepEqual(await h.stores.state.listOutbox(base + 3, 1), entries.slice(0, 1));
        assert.deepEqual(await h.stores.state.listOutbox(base, 10), []);
        await h.stores.state.removeOutbox(entries[0]!.taskId);
        assert.equal(await h.raw.rawOutbox(entries[0]!.taskId), undefined);
        assert.deepEqual(await h.stores.state.listOutbox(base + 3, 10), entries.slice(1));
        for (const entry of entries.slice(1)) await h.stores.state.removeOutbox(entry.taskId);
        assert.deepEqual(await h.stores.state.listOutbox(base + 3, 10), []);
      });
    });
  });

  describe(`store contract: ${adapterName}: listing`, function () {
    this.timeout(120_000);
    // A harness of its own: the unfiltered listing must see only this block's records.
    let h: ContractHarness;
    before(async function () {
      h = await makeHarness();
    });
    after(async function () {
      await h?.cleanup();
    });

    it(`pages through ${pagingRecords.toLocaleString('en')} records newest first, each exactly once, while records are added`, async function () {
      const base = Date.now();
      const records = await inBatches(pagingRecords, 250, async (i) => {
        // Three records per millisecond: ties are broken by id.
        const record = newRecord(h.stores, { createdAt: base - Math.floor(i / 3), taskName: `paging.${i % 7}` });
        await h.stores.state.createTask(record, base);
        return record;
      });
      const expectedIds = new Set(records.map((record) => record.id));
      const seen: TaskRecord[] = [];
      const addedOlder = new Set<string>();
      const addedNewer = new Set<string>();
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await h.stores.state.listTasks({ limit: 100, cursor });
        pages += 1;
        seen.push(...page.records);
        cursor = page.nextCursor;
        if (cursor) assert.equal(page.records.length, 100, 'every page but the last is full');
        const last = page.records[page.records.length - 1];
        if (last && cursor && pages % 10 === 0) {
          // Added while paging: one newer than every page so far (never listed now), one older
          // than the cursor (listed exactly once, later).
          const newer = newRecord(h.stores, { createdAt: base + pages });
          const older = newRecord(h.stores, { createdAt: last.createdAt - 1 });
          await Promise.all([h.stores.state.createTask(newer, base), h.stores.state.createTask(older, base)]);
          addedNewer.add(newer.id);
          addedOlder.add(older.id);
        }
      } while (cursor);

      const ids = seen.map((record) => record.id);
      assert.equal(new Set(ids).size, ids.length, 'no record is listed twice');
      const listed = new Set(ids);
      for (const id of expectedIds) assert.ok(listed.has(id), `record ${id} listed`);
      for (const id of addedOlder) assert.ok(listed.has(id), 'a record added behind the cursor is listed');
      for (const id of addedNewer) assert.ok(!listed.has(id), 'a record added before the cursor is not');
      assert.equal(seen.length, expectedIds.size + addedOlder.size);
      for (let i = 1; i < seen.length; i += 1) assert.ok(newestFirst(seen[i - 1]!, seen[i]!) < 0, 'newest first, ties by id');
      const byId = new Map(records.map((record) => [record.id, record]));
      for (const record of seen.slice(0, 200)) if (byId.has(record.id)) assert.deepEqual(plain(record), plain(byId.get(record.id)));
    });

    it('filters by status, queue, taskName, reference and iterationId, alone and together', async function () {
      const queue = unique('queue');
      const otherQueue = unique('queue');
      const reference = unique('ref');
      const iterationId = unique('iteration');
      const base = Date.now() - 10_000;
      const records: TaskRecord[] = [];
      for (let i = 0; i < 24; i += 1) {
        const fields: Partial<TaskRecord> = {
          createdAt: base + i,
          queue: i % 3 === 0 ? otherQueue : queue,
          taskName: i % 2 ? 'filter.odd' : 'filter.even',
          iterationId: i % 4 === 0 ? iterationId : undefined,
          shardIndex: i % 4 === 0 ? i / 4 : undefined,
        };
        if (i % 6 === 1) fields.reference = reference; // a reference reused once each holder is done
        const record = newRecord(h.stores, fields);
        assert.deepEqual(await h.stores.state.createTask(record, record.createdAt), { created: true });
        if (i % 6 === 1) {
          const done = await h.stores.state.transition(record.id, ['queued'], 'cancelled', {}, base + 100);
          records.push(done!);
        } else if (i % 5 === 0) {
          records.push((await h.stores.state.transition(record.id, ['queued'], 'succeeded', {}, base + 100))!);
        } else {
          records.push(record);
        }
      }
      const queries: TaskQuery[] = [
        { queue },
        { queue: otherQueue },
        { queue, status: 'succeeded' },
        { queue, status: 'queued' },
        { queue, taskName: 'filter.odd' },
        { reference },
        { reference, status: 'cancelled' },
        { iterationId },
        { iterationId, taskName: 'filter.even', queue: otherQueue },
        { queue, status: 'running' },
      ];
      for (const query of queries) {
        // Every query names this test's own queue, reference or iteration, so `records` is all it can match.
        const expected = records.filter((record) => matchesQuery(record, query)).sort(newestFirst);
        assert.ok(query.status === 'running' || expected.length > 0, `the query ${JSON.stringify(query)} matches something`);
        const listed: TaskRecord[] = [];
        let cursor: string | undefined;
        do {
          const page = await h.stores.state.listTasks({ ...query, limit: 2, cursor });
          listed.push(...page.records);
          cursor = page.nextCursor;
        } while (cursor);
        assert.deepEqual(plain(listed), plain(expected), JSON.stringify(query));
      }
    });

    it('a status listing follows the record through its lifecycle', async function () {
      const queue = unique('queue');
      const record = await (async () => {
        const r = newRecord(h.stores, { queue });
        await h.stores.state.createTask(r, r.createdAt);
        return r;
      })();
      const listedIn = async (status: TaskStatus): Promise<boolean> =>
        (await h.stores.state.listTasks({ queue, status })).records.some((r) => r.id === record.id);
      assert.ok(await listedIn('queued'));
      await h.stores.state.acquireLease(record.id, { owner: 'w', now: record.createdAt + 1, leaseMs: 1000, executionCount: 0 });
      assert.ok(!(await listedIn('queued')));
      assert.ok(await listedIn('running'));
      await h.stores.state.settle(record.id, settleInput('w', 'retrying', record.createdAt + 2));
      assert.ok(await listedIn('retrying'));
      assert.ok(!(await listedIn('running')));
      await h.stores.state.transition(record.id, ['retrying'], 'cancelled', {}, record.createdAt + 3);
      assert.ok(await listedIn('cancelled'));
      assert.ok(!(await listedIn('retrying')));
      await h.stores.state.deleteTask(record.id);
      assert.ok(!(await listedIn('cancelled')));
      assert.deepEqual((await h.stores.state.listTasks({ queue })).records, []);
    });

    it('a page holds 50 records unless asked, and never more than 1000', async function () {
      const queue = unique('queue');
      const now = Date.now();
      await inBatches(1_001, 250, async (i) => h.stores.state.createTask(newRecord(h.stores, { queue, createdAt: now - i }), now));
      const byDefault = await h.stores.state.listTasks({ queue });
      assert.equal(byDefault.records.length, 50);
      assert.ok(byDefault.nextCursor);
      const capped = await h.stores.state.listTasks({ queue, limit: 5_000 });
      assert.equal(capped.records.length, 1000);
      assert.ok(capped.nextCursor);
      const rest = await h.stores.state.listTasks({ queue, limit: 5_000, cursor: capped.nextCursor });
      assert.equal(rest.records.length, 1);
      assert.equal(rest.nextCursor, undefined);
    });

    it('refuses a cursor it did not make', async function () {
      await assert.rejects(h.stores.state.listTasks({ cursor: 'not-a-cursor' }), (error: unknown) => {
        return error instanceof CloudDeferError && error.code === 'INVALID_OPTION';
      });
    });
  });
}
