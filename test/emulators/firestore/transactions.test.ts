/** Transactions through the official client: isolation, contention, retries, atomicity, finished transactions. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { Firestore } from '@google-cloud/firestore';
import { rejectsWithCode } from './assertions.js';
import { databaseName, gapicClient, type GapicClient } from './gapic.js';
import { firestoreForTests, type FirestoreForTests } from './harness.js';

describe('firestore emulator: transactions', () => {
  let harness: FirestoreForTests;
  let db: Firestore;
  let gapic: GapicClient;
  const col = (name: string) => db.collection(`${harness.prefix}${name}`);

  before(async () => {
    harness = await firestoreForTests();
    db = harness.firestore;
    gapic = gapicClient(harness);
  });
  after(async () => {
    await gapic.close();
    await harness.clear();
    await harness.stop();
  });

  it('10 concurrent read-modify-write increments of one counter end at exactly 10', async () => {
    const counter = col('counters').doc('shared');
    await counter.set({ value: 0 });
    let attempts = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        db.runTransaction(async (tx) => {
          attempts++;
          const snapshot = await tx.get(counter);
          tx.update(counter, { value: (snapshot.get('value') as number) + 1 });
        }),
      ),
    );
    assert.equal((await counter.get()).get('value'), 10, 'no lost updates');
    assert.ok(attempts >= 10);
  });

  it('transactions locking two documents in opposite orders do not deadlock, and keep the total', async () => {
    const a = col('accounts').doc('a');
    const b = col('accounts').doc('b');
    await a.set({ balance: 100 });
    await b.set({ balance: 100 });
    let attempts = 0;
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        db.runTransaction(async (tx) => {
          attempts++;
          const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
          const fromBalance = (await tx.get(from)).get('balance') as number;
          const toBalance = (await tx.get(to)).get('balance') as number;
          tx.update(from, { balance: fromBalance - 10 });
          tx.update(to, { balance: toBalance + 10 });
        }),
      ),
    );
    const [finalA, finalB] = [(await a.get()).get('balance'), (await b.get()).get('balance')];
    assert.equal(finalA + finalB, 200);
    assert.deepEqual([finalA, finalB], [100, 100], 'four transfers each way');
    assert.ok(attempts >= 8);
  });

  it('a transaction whose query result changed before commit is ABORTED; the client reruns it', async function () {
    // A document the transaction read is locked (an outside write waits, see ../parity.test.ts);
    // a new document entering a query it read is not, and fails the commit's validation.
    if (harness.external) this.skip();
    const open = col('contended');
    await open.doc('a').set({ open: true });
    const summary = col('summaries').doc('open');
    let attempts = 0;
    const result = await db.runTransaction(async (tx) => {
      attempts++;
      const count = (await tx.get(open.where('open', '==', true))).size;
      if (attempts === 1) await open.doc('b').set({ open: true }); // another writer gets in first
      tx.set(summary, { count });
      return count;
    });
    assert.equal(attempts, 2, 'the first commit was ABORTED and the function ran again');
    assert.equal(result, 2);
    assert.equal((await summary.get()).get('count'), 2, 'the retry saw the other write');
  });

  it('the ABORTED status reaches the caller when no retries are left', async function () {
    if (harness.external) this.skip();
    const open = col('contended-once');
    await open.doc('a').set({ open: true });
    const summary = col('summaries').doc('once');
    const attempt = db.runTransaction(
      async (tx) => {
        await tx.get(open.where('open', '==', true));
        await open.doc('b').set({ open: true });
        tx.set(summary, { count: 1 });
      },
      { maxAttempts: 1 },
    );
    await assert.rejects(attempt, (error: { code?: number; message?: string }) => {
      assert.equal(error.code, status.ABORTED);
      assert.match(error.message ?? '', /Too much contention on these documents/);
      return true;
    });
    assert.equal((await summary.get()).exists, false, 'the loser wrote nothing');
  });

  it('a query read in a transaction is validated too: a new matching document aborts the commit', async function () {
    if (harness.external) this.skip();
    const jobs = col('jobs');
    await jobs.doc('a').set({ state: 'open' });
    const attempt = db.runTransaction(
      async (tx) => {
        const open = await tx.get(jobs.where('state', '==', 'open'));
        await jobs.doc('b').set({ state: 'open' }); // a phantom appears
        tx.set(jobs.doc('summary'), { open: open.size });
      },
      { maxAttempts: 1 },
    );
    await rejectsWithCode(attempt, status.ABORTED);
    assert.equal((await jobs.doc('summary').get()).exists, false);
  });

  it('concurrent "create if missing" transactions: exactly one creates the document', async () => {
    const ref = col('reservations').doc('key-1');
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        db.runTransaction(async (tx) => {
          const existing = await tx.get(ref);
          if (existing.exists) return `saw ${existing.get('owner')}`;
          tx.create(ref, { owner: i });
          return 'created';
        }),
      ),
    );
    assert.equal(outcomes.filter((outcome) => outcome === 'created').length, 1);
    const owner = (await ref.get()).get('owner');
    assert.deepEqual(
      outcomes.filter((o) => o !== 'created'),
      Array(4).fill(`saw ${owner}`),
    );
  });

  it('a transaction whose function throws writes nothing', async () => {
    const ref = col('failed').doc('thrown');
    await assert.rejects(
      db.runTransaction(async (tx) => {
        await tx.get(ref);
        tx.set(ref, { written: true });
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.equal((await ref.get()).exists, false);
  });

  it('a commit that fails on one write applies none of them', async () => {
    const existing = col('failed').doc('existing');
    const other = col('failed').doc('other');
    await existing.set({ v: 1 });
    await rejectsWithCode(
      db.runTransaction(async (tx) => {
        await tx.get(other);
        tx.set(other, { v: 2 });
        tx.create(existing, { v: 3 });
      }),
      status.ALREADY_EXISTS,
    );
    assert.equal((await other.get()).exists, false);
    assert.equal((await existing.get()).get('v'), 1);
    // Batches are atomic in the same way.
    const batch = db.batch();
    batch.set(other, { v: 4 });
    batch.update(col('failed').doc('missing'), { v: 5 });
    await rejectsWithCode(batch.commit(), status.NOT_FOUND);
    assert.equal((await other.get()).exists, false);
  });

  it('a read-only transaction reads one consistent snapshot', async () => {
    const a = col('snapshot').doc('a');
    const b = col('snapshot').doc('b');
    await a.set({ v: 1 });
    await b.set({ v: 1 });
    const seen = await db.runTransaction(
      async (tx) => {
        const first = (await tx.get(a)).get('v');
        await b.set({ v: 2 });
        const second = (await tx.get(b)).get('v');
        return [first, second];
      },
      { readOnly: true },
    );
    assert.deepEqual(seen, [1, 1]);
  });

  it('using a committed transaction again is INVALID_ARGUMENT; an unknown one too', async () => {
    const database = databaseName(harness);
    const [begun] = await gapic.beginTransaction({ database });
    const name = `${database}/documents/${harness.prefix}finished/doc`;
    await gapic.commit({ database, transaction: begun.transaction, writes: [{ update: { name, fields: {} } }] });
    const again = gapic.commit({ database, transaction: begun.transaction, writes: [] });
    await rejectsWithCode(again, status.INVALID_ARGUMENT);
    await rejectsWithCode(gapic.getDocument({ name, transaction: begun.transaction }), status.INVALID_ARGUMENT);
    const unknown = gapic.commit({ database, transaction: Buffer.from('not a transaction'), writes: [] });
    await rejectsWithCode(unknown, status.INVALID_ARGUMENT);
  });

  it('returns write results with update times and the commit time; commit times only move forward', async () => {
    const database = databaseName(harness);
    const name = (id: string) => `${database}/documents/${harness.prefix}times/${id}`;
    const [first] = await gapic.commit({
      database,
      writes: [
        { update: { name: name('a'), fields: { n: { integerValue: 1 } } } },
        {
          update: { name: name('b'), fields: {} },
          updateTransforms: [{ fieldPath: 'm', maximum: { integerValue: 5 } }],
        },
      ],
    });
    const [second] = await gapic.commit({
      database,
      writes: [
        {
          update: { name: name('b'), fields: {} },
          updateMask: { fieldPaths: [] },
          updateTransforms: [
            { fieldPath: 'm', maximum: { doubleValue: 7.5 } },
            { fieldPath: 'k', minimum: { integerValue: 3 } },
          ],
        },
        { delete: name('a') },
      ],
    });
    type Time = { seconds?: unknown; nanos?: unknown } | null | undefined;
    const micros = (t: Time) => Number(t!.seconds) * 1e6 + Number(t!.nanos ?? 0) / 1000;
    assert.equal(first.writeResults!.length, 2);
    assert.equal(micros(first.writeResults![0]!.updateTime), micros(first.commitTime));
    assert.ok(micros(second.commitTime) > micros(first.commitTime));
    const results = second.writeResults![0]!.transformResults!;
    assert.deepEqual(
      results.map((v) => v.doubleValue ?? Number(v.integerValue)),
      [7.5, 3],
    );
    const [doc] = await gapic.getDocument({ name: name('b') });
    assert.equal(doc.fields!.m!.doubleValue, 7.5, 'maximum takes the larger operand with its type');
    assert.equal(doc.fields!.k!.integerValue, '3', 'minimum of a missing field sets it');
  });
});
