/**
 * Transactional defer on Datastore: the record, the outbox entity and a large payload's chunks
 * are written in the user's transaction, and the enqueue follows a successful commit only.
 */
import assert from 'node:assert/strict';
import type { Datastore, Transaction } from '@google-cloud/datastore';
import { CloudDeferError } from '../../src/index.js';
import { startWatchedApp, type WatchedApp } from './app.js';
import { datastoreBackends, openDatastoreHarness, type DatastoreHarness } from './harness.js';

const MIB = 1024 * 1024;

for (const { label, backend } of datastoreBackends())
  describe(`transactional defer on Datastore${label}`, function () {
    this.timeout(60_000);
    let h: DatastoreHarness;
    let app: WatchedApp;
    const runs: string[] = [];
    const sizes: number[] = [];

    before(async () => {
      h = await openDatastoreHarness({}, backend);
      app = await startWatchedApp(
        h.stores,
        (d) => {
          d.task('work', (label: string) => {
            runs.push(label);
          });
          d.task('big', (blob: string) => {
            sizes.push(blob.length);
          });
        },
        ['default', 'held'],
      );
    });
    after(async () => {
      await app?.close();
      await h?.cleanup();
    });
    beforeEach(() => {
      runs.length = 0;
      sizes.length = 0;
      app.transport.beforeEnqueue = undefined;
    });

    const pessimistic = () => h.env.google === 'datastore-mode';
    const userKey = (name: string) => h.datastore.key({ namespace: h.stores.namespace, path: ['Order', name] });
    async function begin(datastore: Datastore = h.datastore): Promise<Transaction> {
      const tx = datastore.transaction();
      await tx.run();
      return tx;
    }
    const enqueuedIds = () => app.transport.enqueued.map((request) => JSON.parse(Buffer.from(request.bodyBase64, 'base64').toString('utf8')).id as string);

    it('writes the record and the outbox entity in the transaction and enqueues once the commit has succeeded', async () => {
      const tx = await begin();
      tx.save({ key: userKey('o-1'), data: { total: 42 } });
      const info = await app.deferred.defer('work', ['o-1'], { transaction: tx });
      assert.equal(info.pendingCommit, true);
      assert.equal(await h.raw.rawTask(info.id), undefined, 'nothing is visible before the commit');
      assert.equal(await h.raw.rawOutbox(info.id), undefined);
      assert.ok(!enqueuedIds().includes(info.id));
      let committedAtEnqueue: boolean | undefined;
      app.transport.beforeEnqueue = async () => {
        committedAtEnqueue = (await h.raw.rawTask(info.id)) !== undefined && (await h.raw.rawOutbox(info.id)) !== undefined;
      };
      await tx.commit();
      assert.equal(committedAtEnqueue, true, 'the enqueue saw the committed record and outbox entity');
      assert.equal(enqueuedIds().filter((id) => id === info.id).length, 1);
      assert.equal((await info.wait({ timeoutMs: 10_000 })).status, 'succeeded');
      assert.deepEqual(runs, ['o-1']);
      assert.equal(await h.raw.rawOutbox(info.id), undefined, 'the outbox entity goes once enqueued');
      const [order] = await h.datastore.get(userKey('o-1'));
      assert.equal(order?.total, 42);
    });

    it('a rollback enqueues nothing and leaves nothing, also when commit() is tried after it', async () => {
      const tx = await begin();
      tx.save({ key: userKey('o-2'), data: { total: 1 } });
      const info = await app.deferred.defer('work', ['o-2'], { transaction: tx });
      await tx.rollback();
      await assert.rejects(tx.commit(), /expired/, 'the client refuses to commit a rolled-back transaction');
      await app.deferred.drain();
      assert.equal(await h.raw.rawTask(info.id), undefined);
      assert.equal(await h.raw.rawOutbox(info.id), undefined);
      assert.ok(!enqueuedIds().includes(info.id));
      assert.deepEqual(runs, []);
      await assert.rejects(
        app.deferred.defer('work', ['late'], { transaction: tx }),
        (err: unknown) => err instanceof CloudDeferError && err.code === 'INVALID_STATE',
      );
    });

    it('a commit that fails (contention) enqueues nothing and leaves no record', async () => {
      await h.datastore.save({ key: userKey('o-3'), data: { total: 1 } });
      // Two transactions read and write one order: whichever commits second fails with ABORTED
      // (optimistic databases), or one is chosen to abort (pessimistic ones, as a deadlock).
      const [a, b] = [await begin(), await begin()];
      const infos = [];
      for (const [tx, label] of [
        [a, 'o-3a'],
        [b, 'o-3b'],
      ] as const) {
        const [order] = await tx.get(userKey('o-3'));
        infos.push(await app.deferred.defer('work', [label], { transaction: tx }));
        tx.save({ key: userKey('o-3'), data: { total: Number(order.total) + 1 } });
      }
      const outcomes = await Promise.allSettled([a.commit(), b.commit()]);
      const committed = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      // Where reads lock (Google's Datastore mode), both may time out on each other's lock.
      assert.ok(committed.length === 1 || (pessimistic() && committed.length === 0), `${committed.length} committed`);
      for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code?: number }).code, 10, 'a loser is ABORTED');
      await app.deferred.drain();
      for (const [i, info] of infos.entries()) {
        if (committed.includes(i)) assert.equal((await h.raw.rawTask(info.id))?.status, 'succeeded');
        else {
          assert.equal(await h.raw.rawTask(info.id), undefined);
          assert.equal(await h.raw.rawOutbox(info.id), undefined);
          assert.ok(!enqueuedIds().includes(info.id));
        }
      }
      assert.deepEqual(
        runs,
        committed.map((i) => ['o-3a', 'o-3b'][i]),
      );
    });

    it('a large payload stays transactional: its chunks commit or roll back with the transaction', async () => {
      const blob = 'x'.repeat(3 * MIB);
      const dropped = await begin();
      const gone = await app.deferred.defer('big', [blob], { transaction: dropped });
      await dropped.rollback();
      assert.equal(await h.raw.rawPayload(gone.id), undefined);

      const tx = await begin();
      const info = await app.deferred.defer('big', [blob], { transaction: tx });
      assert.equal(await h.raw.rawPayload(info.id), undefined, 'no chunk before the commit');
      let chunksAtEnqueue = 0;
      app.transport.beforeEnqueue = async () => {
        const payloadChunks = await h.raw.entities(h.stores.kinds.payloadChunk);
        chunksAtEnqueue = payloadChunks.filter((chunk) => chunk.key.parent?.name === info.id).length;
      };
      await tx.commit();
      assert.ok(chunksAtEnqueue >= 3, `a 3 MiB payload spans several entities (${chunksAtEnqueue} chunks besides the head)`);
      assert.equal((await info.wait({ timeoutMs: 20_000 })).status, 'succeeded');
      assert.deepEqual(sizes, [3 * MIB]);
      assert.equal(await h.raw.rawPayload(info.id), undefined, 'deleted once the task succeeded');
    });

    it('wraps commit once: several defers run their enqueue exactly once, with a callback-style commit too', async () => {
      const tx = await begin();
      const first = await app.deferred.defer('work', ['a'], { transaction: tx });
      const second = await app.deferred.defer('work', ['b'], { transaction: tx });
      await new Promise<void>((resolve, reject) => tx.commit((err) => (err ? reject(err) : resolve())));
      await assert.rejects(tx.commit(), 'a second commit is refused by the client');
      await app.deferred.drain();
      for (const id of [first.id, second.id]) assert.equal(enqueuedIds().filter((x) => x === id).length, 1);
      assert.deepEqual(runs.sort(), ['a', 'b']);
    });

    it('joins the reservation: a held reference writes nothing, and of two transactions racing for one reference at most one commits', async () => {
      await app.deferred.pauseQueue('held');
      const holder = await app.deferred.defer('work', ['holder'], { queue: 'held', reference: 'invoice-1' });
      const tx = await begin();
      const blocked = await app.deferred.defer('work', ['blocked'], { queue: 'held', transaction: tx, reference: 'invoice-1' });
      await tx.commit();
      assert.equal(await h.raw.rawTask(blocked.id), undefined);
      assert.ok(!enqueuedIds().includes(blocked.id));
      assert.equal((await app.deferred.findTask({ reference: 'invoice-1' }))?.id, holder.id);

      const [a, b] = [await begin(), await begin()];
      const deferA = await app.deferred.defer('work', ['a'], { queue: 'held', transaction: a, reference: 'invoice-2' });
      const deferB = await app.deferred.defer('work', ['b'], { queue: 'held', transaction: b, reference: 'invoice-2' });
      const outcomes = await Promise.allSettled([a.commit(), b.commit()]);
      const committed = outcomes.filter((o) => o.status === 'fulfilled').length;
      assert.ok(committed === 1 || (pessimistic() && committed === 0), `${committed} committed`);
      for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code?: number }).code, 10, 'a loser is ABORTED');
      const winner = (await h.stores.state.findByReference('invoice-2'))?.id;
      for (const info of [deferA, deferB]) {
        if (info.id === winner) continue;
        assert.equal(await h.raw.rawTask(info.id), undefined);
        assert.ok(!enqueuedIds().includes(info.id));
      }
      if (committed === 1) assert.ok(winner === deferA.id || winner === deferB.id);
      await app.deferred.purgeQueue('held');
      await app.deferred.resumeQueue('held');
    });

    it('stores.transaction(work) commits the work, then enqueues; a throwing work rolls back and enqueues nothing', async () => {
      const info = await h.stores.transaction(async (tx) => {
        tx.save({ key: userKey('o-run'), data: { total: 7 } });
        const deferred = await app.deferred.defer('work', ['run'], { transaction: tx });
        assert.equal(await h.raw.rawTask(deferred.id), undefined, 'nothing visible inside the work');
        return deferred;
      });
      assert.equal(enqueuedIds().filter((id) => id === info.id).length, 1, 'enqueued once, after the commit');
      assert.equal((await info.wait({ timeoutMs: 10_000 })).status, 'succeeded');
      const [order] = await h.datastore.get(userKey('o-run'));
      assert.equal(order?.total, 7);
      let thrown: string | undefined;
      await assert.rejects(
        h.stores.transaction(async (tx) => {
          tx.save({ key: userKey('o-thrown'), data: { total: 1 } });
          thrown = (await app.deferred.defer('work', ['thrown'], { transaction: tx })).id;
          throw new Error('work failed');
        }),
        /work failed/,
      );
      await app.deferred.drain();
      assert.equal(await h.raw.rawTask(thrown!), undefined);
      assert.ok(!enqueuedIds().includes(thrown!));
      assert.equal((await h.datastore.get(userKey('o-thrown')))[0], undefined);
      assert.deepEqual(runs, ['run']);
    });

    it('refuses a read-only transaction and a transaction of another client', async () => {
      const readOnly = h.datastore.transaction({ readOnly: true });
      await assert.rejects(
        app.deferred.defer('work', ['x'], { transaction: readOnly }),
        (err: unknown) => err instanceof CloudDeferError && err.code === 'INVALID_OPTION',
      );
      const foreign = h.newClient().transaction();
      await assert.rejects(app.deferred.defer('work', ['x'], { transaction: foreign }), /not one the datastore stores can join/);
    });
  });
