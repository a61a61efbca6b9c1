/**
 * The Firestore TransactionHook without the engine, both ways in: stores.transaction() and the
 * user's own firestore.runTransaction (whose enqueue the relay makes once it reads the commit).
 * Checks what the commit leaves behind (read raw), when afterCommit runs, and what happens when
 * the client runs the function again. Also with firebase-admin's Firestore.
 */
import assert from 'node:assert/strict';
import type { DocumentReference, Firestore, Transaction } from '@google-cloud/firestore';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { firestoreStores, type FirestoreLibrary } from '../../adapters/firestore/index.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { StagedDefer, TransactionHook } from '../../src/core/stores.js';
import { anotherClient, firestoreBackends, openFirestoreHarness, type FirestoreHarness } from './harness.js';
import { plain, stagedDefer } from './records.js';

/** An afterCommit that counts its runs. */
function counter(): { afterCommit: () => Promise<void>; runs: () => number } {
  let runs = 0;
  return { afterCommit: async () => void (runs += 1), runs: () => runs };
}

/** Poll until `check` holds; the bound only ends a failing test, it measures nothing. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 10))) if (await check()) return;
  assert.fail(`still not true after ${ms} ms: ${what}`);
}

const isCode = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof CloudDeferError && error.code === code && (!pattern || pattern.test(error.message));

for (const { label, backend } of firestoreBackends())
  describe(`firestore TransactionHook${label}`, function () {
    this.timeout(60_000);
    let h: FirestoreHarness;
    let hook: TransactionHook<Transaction>;
    let other: Firestore;
    let docs = 0;

    before(async function () {
      h = await openFirestoreHarness({}, backend ? { backend } : {});
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

    it("accepts the library's transactions (of any client on the database), nothing else", async function () {
      assert.equal(hook.name, 'firestore');
      await h.firestore.runTransaction(async (tx) => assert.ok(hook.accepts(tx)));
      await h.stores.transaction(async (tx) => assert.ok(hook.accepts(tx)));
      await other.runTransaction(async (tx) => assert.ok(hook.accepts(tx), 'the same database through another client'));
      assert.ok(!hook.accepts(h.firestore.batch()), 'a batch is no transaction');
      assert.ok(!hook.accepts(h.firestore));
      assert.ok(!hook.accepts({ get() {}, create() {}, set() {} }));
      assert.ok(!hook.accepts(undefined));
    });

    describe('stores.transaction()', function () {
      it('writes record, outbox document and a 2.5 MB payload in the commit, then runs afterCommit once before it resolves', async function () {
        const staged = stagedDefer({}, 2_500_000);
        const { afterCommit, runs } = counter();
        const mine = userDoc();
        const result = await h.stores.transaction(async (tx) => {
          await tx.get(mine);
          await hook.stage(tx, staged, afterCommit);
          // Reads after a defer are fine: its writes join the transaction after this function.
          await tx.get(userDoc());
          tx.set(mine, { saved: true });
          await assertNothingWritten(staged);
          assert.equal(runs(), 0);
          return 'done';
        });
        assert.equal(result, 'done');
        assert.equal(runs(), 1);
        assert.equal((await mine.get()).get('saved'), true);
        await assertWritten(staged);
        assert.equal(await h.raw.rawTaskExpiry(staged.record.id), staged.record.expiresAt);
      });

      it('a function that throws writes nothing and never runs afterCommit', async function () {
        const staged = stagedDefer({}, 100);
        const { afterCommit, runs } = counter();
        const mine = userDoc();
        await assert.rejects(
          h.stores.transaction(async (tx) => {
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

      it('several defers; a reference held elsewhere is a no-op; twice in one transaction, the first takes it', async function () {
        const held = `ref-${Date.now()}-held`;
        const holder = stagedDefer({ reference: held });
        await h.stores.state.createTask(holder.record, holder.record.createdAt);
        const fresh = `ref-${Date.now()}-fresh`;
        const staged = [
          stagedDefer(),
          stagedDefer({ reference: held }),
          stagedDefer({ reference: fresh }),
          stagedDefer({ reference: fresh }),
          stagedDefer({}, 10),
        ];
        const counters = staged.map(() => counter());
        await h.stores.transaction(async (tx) => {
          for (const [i, s] of staged.entries()) await hook.stage(tx, s, counters[i]!.afterCommit);
        });
        assert.deepEqual(
          counters.map((c) => c.runs()),
          [1, 0, 1, 0, 1],
        );
        for (const i of [0, 2, 4]) await assertWritten(staged[i]!);
        for (const i of [1, 3]) await assertNothingWritten(staged[i]!);
        assert.equal((await h.stores.state.findByReference(fresh))?.id, staged[2]!.record.id);
        assert.equal((await h.stores.state.findByReference(held))?.id, holder.record.id);
      });

      it('a failing afterCommit rejects with ENQUEUE_FAILED without running the function again; the commit stands', async function () {
        const staged = [stagedDefer(), stagedDefer()];
        const second = counter();
        let calls = 0;
        await assert.rejects(
          h.stores.transaction(async (tx) => {
            calls += 1;
            await hook.stage(tx, staged[0]!, async () => {
              throw Object.assign(new Error('queue down'), { code: 14 });
            });
            await hook.stage(tx, staged[1]!, second.afterCommit);
          }),
          isCode('ENQUEUE_FAILED'),
        );
        assert.equal(calls, 1);
        assert.equal(second.runs(), 1, 'the other afterCommit still ran');
        for (const s of staged) await assertWritten(s);
      });

      it('staging after the transaction ended is refused', async function () {
        let kept!: Transaction;
        await h.stores.transaction(async (tx) => {
          kept = tx;
        });
        await assert.rejects(
          hook.stage(kept, stagedDefer(), async () => undefined),
          isCode('INVALID_STATE'),
        );
      });
    });

    describe("the user's own firestore.runTransaction", function () {
      it('writes in the commit; the relay runs afterCommit once after it; a failed transaction never runs it', async function () {
        const failed = stagedDefer({}, 100);
        const failedRuns = counter();
        await assert.rejects(
          h.firestore.runTransaction(async (tx) => {
            await hook.stage(tx, failed, failedRuns.afterCommit);
            throw new Error('changed my mind');
          }),
          /changed my mind/,
        );
        const staged = stagedDefer({}, 2_500_000);
        const { afterCommit, runs } = counter();
        const mine = userDoc();
        await h.firestore.runTransaction(async (tx) => {
          await tx.get(mine);
          await hook.stage(tx, staged, afterCommit);
          tx.set(mine, { saved: true });
          await assertNothingWritten(staged);
        });
        await assertWritten(staged);
        await eventually('the relay ran afterCommit', () => runs() === 1);
        // The failed one's relay started first and polls as often: had it seen a commit, it would have run.
        assert.equal(failedRuns.runs(), 0);
        await assertNothingWritten(failed);
        assert.equal(runs(), 1);
      });

      it('a defer with a reference after the transaction wrote says to defer first, and nothing commits', async function () {
        const staged = stagedDefer({ reference: `ref-${Date.now()}-late` });
        const mine = userDoc();
        await assert.rejects(
          h.firestore.runTransaction(async (tx) => {
            tx.set(mine, { saved: true });
            await hook.stage(tx, staged, async () => undefined);
          }),
          isCode('INVALID_STATE', /before/),
        );
        await assertNothingWritten(staged);
        assert.equal((await mine.get()).exists, false);
      });

      it('refuses a read-only transaction, and staging after the commit', async function () {
        await h.firestore.runTransaction(
          async (tx) => {
            await assert.rejects(
              hook.stage(tx, stagedDefer(), async () => undefined),
              isCode('INVALID_OPTION'),
            );
          },
          { readOnly: true },
        );
        let kept!: Transaction;
        const mine = userDoc();
        // A transaction that wrote (the client sends nothing for one that neither read nor wrote).
        await h.firestore.runTransaction(async (tx) => {
          kept = tx;
          tx.set(mine, { saved: true });
        });
        await assert.rejects(
          hook.stage(kept, stagedDefer(), async () => undefined),
          isCode('INVALID_STATE'),
        );
      });

      it('two transactions deferring with one free reference at once: exactly one defer is written and enqueued', async function () {
        const reference = `ref-${Date.now()}-race`;
        const staged: StagedDefer[] = [];
        const runs: Array<() => number> = [];
        await Promise.all(
          [0, 1].map((i) =>
            (i ? other : h.firestore).runTransaction(async (tx) => {
              const mine = stagedDefer({ reference });
              const { afterCommit, runs: count } = counter();
              staged.push(mine);
              runs.push(count);
              await hook.stage(tx, mine, afterCommit);
            }),
          ),
        );
        const holder = await h.stores.state.findByReference(reference);
        assert.ok(holder && staged.some((s) => s.record.id === holder.id));
        await eventually('the winner enqueued', () => runs.reduce((sum, count) => sum + count(), 0) === 1);
        for (const s of staged) if (s.record.id !== holder.id) await assertNothingWritten(s);
      });
    });

    it('contention: two transactions deadlock and one runs again; only committed attempts write and enqueue (both ways in)', async function () {
      const x = userDoc();
      const y = userDoc();
      let aHasX!: () => void;
      let bHasY!: () => void;
      const aHoldsX = new Promise<void>((resolve) => (aHasX = resolve));
      const bHoldsY = new Promise<void>((resolve) => (bHasY = resolve));
      const attempts: Record<'a' | 'b', Array<{ staged: StagedDefer; runs: () => number }>> = { a: [], b: [] };
      const calls = { a: 0, b: 0 };
      // Each reads its own document, then the other's: exclusive read locks deadlock at the second
      // read, shared ones (Google's) at the commits. The defer comes after the reads, as the user's
      // own transaction requires.
      const work =
        (name: 'a' | 'b', mine: DocumentReference, theirs: DocumentReference, signal: () => void, wait: Promise<void>) => async (tx: Transaction) => {
          calls[name] += 1;
          await tx.get(mine);
          if (calls[name] === 1) {
            signal();
            await wait;
          }
          await tx.get(theirs);
          const staged = stagedDefer();
          const { afterCommit, runs } = counter();
          attempts[name].push({ staged, runs });
          await hook.stage(tx, staged, afterCommit);
          tx.set(mine, { by: name });
        };
      await Promise.all([h.stores.transaction(work('a', x, y, aHasX, bHoldsY)), h.firestore.runTransaction(work('b', y, x, bHasY, aHoldsX))]);
      assert.ok(calls.a + calls.b >= 3, `the functions ran ${calls.a} and ${calls.b} time(s)`);
      for (const name of ['a', 'b'] as const) {
        const committed = attempts[name][attempts[name].length - 1]!;
        await eventually(`${name}'s committed attempt enqueued`, () => committed.runs() === 1);
        await assertWritten(committed.staged);
        for (const earlier of attempts[name].slice(0, -1)) {
          assert.equal(earlier.runs(), 0, 'an attempt that did not commit never enqueues');
          await assertNothingWritten(earlier.staged);
        }
      }
    });
  });

for (const { label, backend } of firestoreBackends())
  describe(`firestore stores on firebase-admin's Firestore${label}`, function () {
    this.timeout(60_000);
    let h: FirestoreHarness;
    let app: ReturnType<typeof initializeApp>;
    let admin: Firestore;

    before(async function () {
      h = await openFirestoreHarness({}, backend ? { backend } : {});
      app = initializeApp({ projectId: h.env.projectId }, `cloud-defer-${Date.now()}-${Math.random()}`);
      const previous = process.env.FIRESTORE_EMULATOR_HOST;
      process.env.FIRESTORE_EMULATOR_HOST = h.env.address;
      try {
        const { getFirestore } = await import('firebase-admin/firestore');
        // The client reads the variable in its constructor.
        admin = getFirestore(app) as unknown as Firestore;
      } finally {
        if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
        else process.env.FIRESTORE_EMULATOR_HOST = previous;
      }
    });
    after(async function () {
      if (app) await deleteApp(app);
      await h?.cleanup();
    });

    it('records, references and transactional defers (both ways in) through its own copy of the library', async function () {
      const library = (await import('firebase-admin/firestore')) as unknown as FirestoreLibrary;
      const stores = firestoreStores({ firestore: admin, library, collectionPrefix: h.prefix });
      const hook = stores.transactions[0];
      const plainDefer = stagedDefer({ reference: `ref-${Date.now()}-admin` });
      assert.deepEqual(await stores.state.createTask(plainDefer.record, plainDefer.record.createdAt), { created: true });
      assert.equal((await h.stores.state.findByReference(plainDefer.record.reference!))?.id, plainDefer.record.id, 'read back through the other client');
      const viaRunner = stagedDefer({}, 1_500_000);
      const viaOwn = stagedDefer();
      const [runner, own] = [counter(), counter()];
      await stores.transaction(async (tx) => hook.stage(tx, viaRunner, runner.afterCommit));
      assert.equal(runner.runs(), 1);
      await admin.runTransaction(async (tx) => {
        assert.ok(hook.accepts(tx));
        await hook.stage(tx, viaOwn, own.afterCommit);
      });
      await eventually('the relay ran afterCommit', () => own.runs() === 1);
      for (const staged of [viaRunner, viaOwn]) assert.deepEqual(await h.raw.rawTask(staged.record.id), plain(staged.record));
      assert.ok(Buffer.from((await h.raw.rawPayload(viaRunner.record.id))!).equals(Buffer.from(viaRunner.payload!.data)));
      await stores.close();
    });
  });
