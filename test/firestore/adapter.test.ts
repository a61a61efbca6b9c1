/** Firestore-specific behaviour of cloud-defer/firestore beyond the store contract. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Timestamp } from '@google-cloud/firestore';
import { firestoreStores } from '../../adapters/firestore/index.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { firestoreBackends, openFirestoreHarness, type FirestoreHarness } from './harness.js';
import { HOUR, plain, taskRecord } from './records.js';

describe('cloud-defer/firestore sources', function () {
  it("read no private field of the client (no `._x`, `x_` or `['_x']`): a minor release cannot break them silently", function () {
    const folder = path.resolve(__dirname, '../../../adapters/firestore');
    const files = readdirSync(folder).filter((name) => name.endsWith('.ts'));
    assert.ok(files.length >= 5, `found the sources in ${folder}`);
    for (const name of files) {
      const code = readFileSync(path.join(folder, name), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      assert.doesNotMatch(code, /\._[A-Za-z]|\b[a-z][A-Za-z]*_\b(?!\()|\[['"]_/, name);
    }
  });
});

for (const { label, backend } of firestoreBackends())
  describe(`cloud-defer/firestore adapter${label}`, function () {
    this.timeout(60_000);
    let h: FirestoreHarness;
    before(async function () {
      h = await openFirestoreHarness({}, backend ? { backend } : {});
    });
    after(async function () {
      await h?.cleanup();
    });

    const doc = (collection: string, id: string) => h.firestore.collection(`${h.prefix}${collection}`).doc(id);

    /** Puts a record's retention in the past without deleting it, as before TTL gets to it. */
    async function expire(collection: string, id: string): Promise<void> {
      await doc(collection, id).update({ expireAt: new Date(Date.now() - 1000) });
    }

    it('importing it loads no @google-cloud/firestore', function () {
      const entry = path.resolve(__dirname, '../../adapters/firestore/index.js');
      const script = `const m = require(${JSON.stringify(entry)}); const count = () => Object.keys(require.cache).filter((f) => /@google-cloud[\\\\/]firestore[\\\\/]/.test(f)).length; console.log(typeof m.firestoreStores, count())`;
      assert.equal(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim(), 'function 0');
    });

    it('refuses a client from another copy of the library, and names the way out', function () {
      const foreign = { Firestore: class {}, FieldValue: {}, FieldPath: {}, Timestamp: {} } as never;
      assert.throws(
        () => firestoreStores({ firestore: h.firestore, library: foreign }),
        (error: unknown) => {
          return error instanceof CloudDeferError && error.code === 'INVALID_OPTION' && /library/.test(error.message);
        },
      );
      assert.throws(() => firestoreStores({ firestore: h.firestore, collectionPrefix: 'a/b' }), /collectionPrefix/);
    });

    it('stores a record as one document of the same fields plus an expireAt timestamp, and its reference claim by hash', async function () {
      const record = taskRecord({
        reference: 'order/42 ✉',
        lastError: { message: 'x' },
        history: [{ at: 1, statusCode: 500, outcome: 'retrying', durationMs: 2.5 }],
      });
      await h.stores.state.createTask(record, record.createdAt);
      const snapshot = await doc('Tasks', record.id).get();
      const { expireAt, ...fields } = snapshot.data()!;
      assert.deepEqual(fields, plain(record));
      assert.equal((expireAt as Timestamp).toMillis(), record.expiresAt);
      assert.equal(typeof (expireAt as Timestamp).toDate, 'function', 'a Firestore timestamp, as TTL policies need');
      const claim = await doc('References', createHash('sha256').update(record.reference!).digest('hex')).get();
      assert.equal(claim.get('taskId'), record.id);
      assert.equal(claim.get('reference'), record.reference);
      assert.equal((claim.get('expireAt') as Timestamp).toMillis(), record.expiresAt);
    });

    it('an expired record TTL has not deleted yet reads as gone everywhere, and its id and reference can be taken again', async function () {
      const queue = `q-${Date.now()}`;
      const record = taskRecord({ reference: `ref-${Date.now()}`, queue });
      await h.stores.state.createTask(record, record.createdAt);
      await expire('Tasks', record.id);
      assert.ok((await doc('Tasks', record.id).get()).exists, 'the document is still there');
      assert.equal(await h.stores.state.getTask(record.id), undefined);
      assert.equal(await h.stores.state.findByReference(record.reference!), undefined);
      assert.deepEqual((await h.stores.state.listTasks({ queue })).records, []);
      assert.equal((await h.stores.state.acquireLease(record.id, { owner: 'w', now: Date.now(), leaseMs: 1000, executionCount: 0 })).kind, 'missing');
      assert.equal(await h.stores.state.transition(record.id, ['queued'], 'cancelled', {}, Date.now()), undefined);
      const again = taskRecord({ id: record.id, reference: record.reference, queue, taskName: 'again' });
      assert.deepEqual(await h.stores.state.createTask(again, Date.now()), { created: true });
      assert.equal((await h.stores.state.getTask(record.id))?.taskName, 'again');
      assert.equal((await h.stores.state.findByReference(record.reference!))?.id, record.id);
    });

    it('a settle decided on the lease it last wrote does not bring back a record whose retention passed since it was read', async function () {
      // The store's clock passes the record's expireAt with no write to the document (as time does).
      let clock = Date.now();
      const stores = firestoreStores({ firestore: h.firestore, collectionPrefix: h.prefix, now: () => clock });
      const record = taskRecord({ queue: `q-${Date.now()}`, expiresAt: clock + HOUR });
      await stores.state.createTask(record, record.createdAt);
      const lease = await stores.state.acquireLease(record.id, { owner: 'w', now: clock, leaseMs: 60_000, executionCount: 1 });
      assert.equal(lease.kind, 'acquired');
      assert.equal((await stores.state.getTask(record.id))?.status, 'running', 'read while live');
      clock = record.expiresAt + 1;
      assert.equal(await stores.state.getTask(record.id), undefined, 'read once expired');
      const settled = await stores.state.settle(record.id, {
        owner: 'w',
        status: 'succeeded',
        now: clock,
        attempt: { at: clock - 5, statusCode: 200, outcome: 'succeeded', durationMs: 5 },
        expiresAt: clock + HOUR,
        last: lease.kind === 'acquired' ? lease.record : undefined,
      });
      assert.equal(settled, undefined, 'the settle found no record');
      const stored = await doc('Tasks', record.id).get();
      assert.equal(stored.get('status'), 'running', 'the expired document was not written');
      assert.equal((stored.get('expireAt') as Timestamp).toMillis(), record.expiresAt);
    });

    it('a listing skips expired records and still fills its page', async function () {
      const queue = `q-${Date.now()}-fill`;
      const base = Date.now();
      const records = Array.from({ length: 12 }, (_, i) => taskRecord({ queue, createdAt: base - i }));
      for (const record of records) await h.stores.state.createTask(record, base);
      for (const record of records.slice(0, 8)) await expire('Tasks', record.id);
      const page = await h.stores.state.listTasks({ queue, limit: 3 });
      assert.deepEqual(
        page.records.map((r) => r.id),
        records.slice(8, 11).map((r) => r.id),
      );
      const rest = await h.stores.state.listTasks({ queue, limit: 3, cursor: page.nextCursor });
      assert.deepEqual(
        rest.records.map((r) => r.id),
        [records[11]!.id],
      );
      assert.equal(rest.nextCursor, undefined);
    });

    it("settle moves the reference claim's expireAt with the record's retention", async function () {
      const record = taskRecord({ reference: `ref-${Date.now()}-keep` });
      await h.stores.state.createTask(record, record.createdAt);
      const now = Date.now();
      await h.stores.state.acquireLease(record.id, { owner: 'w', now, leaseMs: 1000, executionCount: 1 });
      await h.stores.state.settle(record.id, {
        owner: 'w',
        status: 'succeeded',
        now,
        attempt: { at: now, statusCode: 200, outcome: 'succeeded', durationMs: 1 },
        expiresAt: now + 9 * HOUR,
      });
      const claim = await doc('References', createHash('sha256').update(record.reference!).digest('hex')).get();
      assert.equal((claim.get('expireAt') as Timestamp).toMillis(), now + 9 * HOUR);
    });

    describe('payloads', function () {
      it('up to 1,000,000 bytes: one document; 2.5 MB: a head and three chunks; delete removes them all', async function () {
        await h.stores.payloads.put('small', Buffer.alloc(1_000_000, 1), HOUR);
        assert.equal(await h.raw.rawPayloadDocuments('small'), 1);
        const big = Buffer.alloc(2_500_000);
        for (let i = 0; i < big.length; i += 1) big[i] = i % 251;
        await h.stores.payloads.put('big', big, HOUR);
        assert.equal(await h.raw.rawPayloadDocuments('big'), 4);
        assert.ok(Buffer.from((await h.stores.payloads.get('big'))!).equals(big));
        await h.stores.payloads.delete('big');
        assert.equal(await h.raw.rawPayloadDocuments('big'), 0);
      });

      it('a put over an existing payload reads back the new bytes only', async function () {
        await h.stores.payloads.put('over', Buffer.alloc(2_100_000, 3), HOUR);
        await h.stores.payloads.put('over', Buffer.alloc(1_500_000, 4), HOUR);
        const read = Buffer.from((await h.stores.payloads.get('over'))!);
        assert.equal(read.byteLength, 1_500_000);
        assert.ok(read.every((b) => b === 4));
        await h.stores.payloads.put('over', Buffer.from('tiny'), HOUR);
        assert.equal(Buffer.from((await h.stores.payloads.get('over'))!).toString(), 'tiny');
      });

      it('an expired payload reads as gone before TTL deletes it', async function () {
        await h.stores.payloads.put('stale', Buffer.from('old'), HOUR);
        await expire('Payloads', 'stale');
        assert.equal(await h.stores.payloads.get('stale'), undefined);
      });
    });

    describe('iterations', function () {
      const iteration = (id: string, shardCount = 0) => ({
        id,
        callbackTask: 'cb',
        finalizeTask: 'fin',
        queue: 'default',
        shardCount,
        status: 'splitting' as const,
        createdAt: Date.now(),
        updatedAt: Date.now(),
        shards: [],
        deleteMarker: false,
        expiresAt: Date.now() + HOUR,
      });

      it('10 shards completing at once from 10 clients: exactly one hears allDone; repeats change nothing', async function () {
        const id = `it-${Date.now()}`;
        await h.stores.iterations.createIteration(iteration(id));
        await h.stores.iterations.startIteration(id, 10, Date.now());
        const contenders = await h.contenders(10);
        const results = await Promise.all(contenders.map((stores, i) => stores.iterations!.completeShard(id, i, Date.now())));
        const finishers = results.flatMap((r, i) => (r.allDone ? [i] : []));
        assert.equal(finishers.length, 1, 'exactly one completion hears allDone');
        // A redelivered completion of the finisher hears allDone again (finalize is idempotent); any other repeat does not.
        const other = (finishers[0]! + 1) % 10;
        assert.equal((await h.stores.iterations.completeShard(id, other, Date.now())).allDone, false);
        assert.equal((await h.stores.iterations.completeShard(id, finishers[0]!, Date.now())).allDone, true);
        const record = await h.stores.iterations.getIteration(id);
        assert.ok(record?.shards.every((s) => s.done && typeof s.finishedAt === 'number'));
      });

      it('shard progress from many writers at once adds up; startedAt keeps the first committed time', async function () {
        const id = `it-${Date.now()}-p`;
        await h.stores.iterations.createIteration(iteration(id));
        await h.stores.iterations.startIteration(id, 2, Date.now());
        const contenders = await h.contenders(20);
        await Promise.all(
          contenders.map((stores, i) =>
            stores.iterations!.recordShardProgress(id, 1, {
              processedDelta: 5,
              errorsDelta: i % 2,
              now: 1000 + i,
              ...(i === 19 ? { lastError: { message: 'last' } } : {}),
            }),
          ),
        );
        const shard = (await h.stores.iterations.getIteration(id))!.shards[1]!;
        assert.deepEqual({ processed: shard.processed, errors: shard.errors }, { processed: 100, errors: 10 });
        assert.equal(shard.lastError?.message, 'last', 'the one writer that set lastError');
        // Which writer commits first is the server's to decide: startedAt is that one's time, kept after.
        assert.ok(shard.startedAt! >= 1000 && shard.startedAt! <= 1019, `startedAt ${shard.startedAt}`);
        await h.stores.iterations.recordShardProgress(id, 1, { processedDelta: 1, errorsDelta: 0, now: 5 });
        assert.equal((await h.stores.iterations.getIteration(id))!.shards[1]!.startedAt, shard.startedAt);
        await h.stores.iterations.deleteIteration(id);
        await h.stores.iterations.recordShardProgress(id, 0, { processedDelta: 1, errorsDelta: 0, now: 1 });
        await h.stores.iterations.finishIteration(id, 'succeeded', Date.now());
        assert.equal(await h.stores.iterations.getIteration(id), undefined, 'writes after delete are no-ops');
      });

      it('lists iterations newest first in pages, skipping expired ones', async function () {
        const ids = [1, 2, 3].map((i) => `it-list-${Date.now()}-${i}`);
        for (const [i, id] of ids.entries()) await h.stores.iterations.createIteration({ ...iteration(id), createdAt: Date.now() + 10_000 + i });
        await expire('Iterations', ids[1]!);
        const first = await h.stores.iterations.listIterations({ limit: 1 });
        assert.deepEqual(
          first.records.map((r) => r.id),
          [ids[2]],
        );
        const second = await h.stores.iterations.listIterations({ limit: 1, cursor: first.nextCursor });
        assert.deepEqual(
          second.records.map((r) => r.id),
          [ids[0]],
        );
      });
    });
  });
