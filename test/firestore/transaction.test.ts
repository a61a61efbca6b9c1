/**
 * The Firestore TransactionHook with the client's own runTransaction, without the engine: stage
 * defers next to the user's reads and writes, and check what the commit leaves behind (read
 * raw), when afterCommit runs, and what happens when the client runs the function again.
 */
import assert from 'node:assert/strict';
import type { DocumentReference, Firestore, Transaction } from '@google-cloud/firestore';
import { CloudDeferError } from '../../src/core/errors.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import { anotherClient, openFirestoreHarness, type FirestoreHarness } from './harness.js';
import { plain, stagedDefer } from './records.js';

/** An afterCommit that counts its runs. */
function counter(): { afterCommit: () => Promise<void>; runs: () => number } {
  let runs = 0;
  return { afterCommit: async () => void (runs += 1), runs: () => runs };
}

describe('firestore TransactionHook (runTransaction)', function () {
  let h: FirestoreHarness;
  let hook: TransactionHook<Transaction>;
  let other: Firestore;
  let docs = 0;

  before(async function () {
    h = await openFirestoreHarness();
    hook = h.stores.transactions[0];
    other = anotherClient(h.env);
  });
  after(async function () {
    await other?.terminate();
    await h?.cleanup();
  });

  const userDoc = (): DocumentReference => h.firestore.collection(`${h.prefix}User`).doc(`d${(docs += 1)}`);

  async function assertNothingWritten(staged: StagedDefer): Promise<void> {
    assert.equal(await h.raw.rawTask(staged.record.id), undefined, 'no record');
    assert.equal(await h.raw.rawOutbox(staged.outbox.taskId), undefined, 'no outbox entry');
    if (staged.payload) assert.equal(await h.raw.rawPayload(staged.payload.id), undefined, 'no payload');
  }

  async function assertWritten(staged: StagedDefer): Promise<void> {
    assert.deepEqual(await h.raw.rawTask(staged.record.id), plain(staged.record));
    assert.deepEqual(await h.raw.rawOutbox(staged.outbox.taskId), staged.outbox);
    if (staged.payload) assert.ok(Buffer.from((await h.raw.rawPayload(staged.payload.id))!).equals(Buffer.from(staged.payload.data)));
  }

  it('accepts a transaction of its own client only', async function () {
    assert.equal(hook.name, 'firestore');
    await h.firestore.runTransaction(async (tx) => {
      assert.ok(hook.accepts(tx));
    });
    await other.runTransaction(async (tx) => {
      assert.ok(!hook.accepts(tx), "another client's transaction");
    });
    assert.ok(!hook.accepts(h.firestore.batch()), 'a batch is no transaction');
    assert.ok(!hook.accepts(h.firestore));
    assert.ok(!hook.accepts({ commit() {}, rollback() {} }));
    assert.ok(!hook.accepts(undefined));
  });

  it("writes record, outbox document and a 2.5 MB payload in the user's commit, then runs afterCommit once", async function () {
    const staged = stagedDefer({}, 2_500_000);
    const { afterCommit, runs } = counter();
    const mine = userDoc();
    await h.firestore.runTransaction(async (tx) => {
      await tx.get(mine);
      await hook.stage(tx, staged, afterCommit);
      // Reads after a defer are fine: its writes join the transaction at commit.
      await tx.get(userDoc());
      tx.set(mine, { saved: true });
      await assertNothingWritten(staged);
      assert.equal(runs(), 0);
    });
    assert.equal(runs(), 1, 'afterCommit ran once, before runTransaction resolved');
    assert.equal((await mine.get()).get('saved'), true);
    await assertWritten(staged);
    assert.equal(await h.raw.rawTaskExpiry(staged.record.id), staged.record.expiresAt);
  });

  it('stages several defers in one transaction; each afterCommit runs once', async function () {
    const staged = [stagedDefer(), stagedDefer(), stagedDefer({}, 10)];
    const counters = staged.map(() => counter());
    await h.firestore.runTransaction(async (tx) => {
      for (const [i, s] of staged.entries()) await hook.stage(tx, s, counters[i]!.afterCommit);
    });
    for (const s of staged) await assertWritten(s);
    assert.deepEqual(
      counters.map((c) => c.runs()),
      [1, 1, 1],
    );
  });

  it('a transaction function that throws writes nothing and never runs afterCommit', async function () {
    const staged = stagedDefer({}, 100);
    const { afterCommit, runs } = counter();
    const mine = userDoc();
    await assert.rejects(
      h.firestore.runTransaction(async (tx) => {
        await hook.stage(tx, staged, afterCommit);
        tx.set(mine, { saved: true });
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.equal(runs(), 0);
    await assertNothingWritten(staged);
    assert.equal((await mine.get()).exists, false);
  });

  it('contention: two transactions deadlock, the younger one runs again; only its committed attempt writes and enqueues', async function () {
    const x = userDoc();
    const y = userDoc();
    let aHasX!: () => void;
    let bHasY!: () => void;
    const aHoldsX = new Promise<void>((resolve) => (aHasX = resolve));
    const bHoldsY = new Promise<void>((resolve) => (bHasY = resolve));
    const attempts: Array<{ staged: StagedDefer; runs: () => number }> = [];
    const a = h.firestore.runTransaction(async (tx) => {
      await tx.get(x);
      aHasX();
      await bHoldsY;
      await tx.get(y);
      tx.set(x, { by: 'a' });
    });
    const b = h.firestore.runTransaction(async (tx) => {
      const staged = stagedDefer();
      const { afterCommit, runs } = counter();
      attempts.push({ staged, runs });
      if (attempts.length === 1) await aHoldsX;
      await tx.get(y);
      await hook.stage(tx, staged, afterCommit);
      if (attempts.length === 1) bHasY();
      await tx.get(x); // first attempt: each waits for the other's lock, and the younger one (b) is aborted
      tx.set(y, { by: 'b' });
    });
    await Promise.all([a, b]);
    assert.ok(attempts.length >= 2, `the function ran ${attempts.length} time(s)`);
    const committed = attempts[attempts.length - 1]!;
    assert.equal(committed.runs(), 1);
    await assertWritten(committed.staged);
    for (const earlier of attempts.slice(0, -1)) {
      assert.equal(earlier.runs(), 0, 'an attempt that did not commit never enqueues');
      await assertNothingWritten(earlier.staged);
    }
  });

  it('contention at commit (a write outside the transaction): the aborted attempt enqueues nothing', async function () {
    // A document the transaction read is locked (outside writes wait for it, on Firestore and on
    // both emulators). Our emulator does not lock a query's range, so a new document entering a
    // query the transaction read fails the commit's validation instead; Google's locks the range
    // too, and the outside write waits (a deadlock here), so this runs on ours only.
    if (h.env.external) this.skip();
    const x = userDoc();
    const open = h.firestore.collection(`${h.prefix}Open${(docs += 1)}`);
    await open.doc('a').set({ open: true });
    const attempts: Array<{ staged: StagedDefer; runs: () => number }> = [];
    await h.firestore.runTransaction(async (tx) => {
      const staged = stagedDefer({}, 50);
      const { afterCommit, runs } = counter();
      attempts.push({ staged, runs });
      const n = (await tx.get(open.where('open', '==', true))).size;
      await hook.stage(tx, staged, afterCommit);
      if (attempts.length === 1) await other.collection(open.path).doc('b').set({ open: true });
      tx.set(x, { n });
    });
    assert.equal(attempts.length, 2);
    assert.equal((await x.get()).get('n'), 2);
    assert.equal(attempts[0]!.runs(), 0);
    await assertNothingWritten(attempts[0]!.staged);
    assert.equal(attempts[1]!.runs(), 1);
    await assertWritten(attempts[1]!.staged);
  });

  it('a reference held elsewhere makes the defer a no-op; twice in one transaction, the first takes it', async function () {
    const reference = `ref-${Date.now()}`;
    const holder = stagedDefer({ reference });
    await h.stores.state.createTask(holder.record, holder.record.createdAt);
    const blocked = stagedDefer({ reference });
    const blockedRuns = counter();
    await h.firestore.runTransaction(async (tx) => hook.stage(tx, blocked, blockedRuns.afterCommit));
    assert.equal(blockedRuns.runs(), 0);
    await assertNothingWritten(blocked);

    const fresh = `ref-${Date.now()}-fresh`;
    const first = stagedDefer({ reference: fresh });
    const second = stagedDefer({ reference: fresh });
    const runs = [counter(), counter()];
    await h.firestore.runTransaction(async (tx) => {
      await hook.stage(tx, first, runs[0]!.afterCommit);
      await hook.stage(tx, second, runs[1]!.afterCommit);
    });
    assert.deepEqual(
      runs.map((r) => r.runs()),
      [1, 0],
    );
    await assertWritten(first);
    await assertNothingWritten(second);
    assert.equal((await h.stores.state.findByReference(fresh))?.id, first.record.id);
  });

  it('two transactions deferring with one free reference at once: exactly one defer is written and enqueued', async function () {
    const reference = `ref-${Date.now()}-race`;
    const staged: StagedDefer[] = [];
    const runs: Array<() => number> = [];
    await Promise.all(
      [0, 1].map(() =>
        h.firestore.runTransaction(async (tx) => {
          const mine = stagedDefer({ reference });
          const { afterCommit, runs: count } = counter();
          staged.push(mine);
          runs.push(count);
          await hook.stage(tx, mine, afterCommit);
        }),
      ),
    );
    assert.equal(
      runs.reduce((sum, count) => sum + count(), 0),
      1,
    );
    const holder = await h.stores.state.findByReference(reference);
    assert.ok(holder && staged.some((s) => s.record.id === holder.id));
    for (const s of staged) if (s.record.id !== holder.id) assert.equal(await h.raw.rawTask(s.record.id), undefined);
  });

  it('a defer with a reference after the transaction wrote says to defer first, and nothing commits', async function () {
    const staged = stagedDefer({ reference: `ref-${Date.now()}-late` });
    const mine = userDoc();
    await assert.rejects(
      h.firestore.runTransaction(async (tx) => {
        tx.set(mine, { saved: true });
        await hook.stage(tx, staged, async () => undefined);
      }),
      (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_STATE' && /before/.test(error.message),
    );
    await assertNothingWritten(staged);
    assert.equal((await mine.get()).exists, false);
  });

  it('refuses a read-only transaction, and staging after the commit', async function () {
    await h.firestore.runTransaction(
      async (tx) => {
        await assert.rejects(
          hook.stage(tx, stagedDefer(), async () => undefined),
          (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_OPTION',
        );
      },
      { readOnly: true },
    );
    let kept!: Transaction;
    await h.firestore.runTransaction(async (tx) => {
      kept = tx;
      await hook.stage(tx, stagedDefer(), async () => undefined);
    });
    await assert.rejects(
      hook.stage(kept, stagedDefer(), async () => undefined),
      (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_STATE',
    );
  });

  it('a failing afterCommit rejects runTransaction without running the function again; the commit stands', async function () {
    const staged = [stagedDefer(), stagedDefer()];
    const second = counter();
    let calls = 0;
    await assert.rejects(
      h.firestore.runTransaction(async (tx) => {
        calls += 1;
        await hook.stage(tx, staged[0]!, async () => {
          throw Object.assign(new Error('queue down'), { code: 14 });
        });
        await hook.stage(tx, staged[1]!, second.afterCommit);
      }),
      (error: unknown) => error instanceof CloudDeferError && error.code === 'ENQUEUE_FAILED',
    );
    assert.equal(calls, 1);
    assert.equal(second.runs(), 1, 'the other afterCommit still ran');
    for (const s of staged) await assertWritten(s);
  });
});
