/** The TransactionHook seam with the memory stores, and the outbox sweeper. */
import assert from 'node:assert/strict';
import { memoryStores } from '../../adapters/memory/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

describe('transactional defer (memory stores)', () => {
  let app: TestApp;
  const stores = memoryStores();
  const runs: unknown[] = [];

  before(async () => {
    app = await startApp('express', { stores }, (deferred) => {
      deferred.task('note', (value: unknown) => {
        runs.push(value);
      });
    });
  });
  after(() => app.close());
  beforeEach(() => {
    runs.length = 0;
  });

  it('enqueues only after commit', async () => {
    const tx = stores.beginTransaction();
    const info = await app.deferred.defer('note', ['committed'], { transaction: tx });
    assert.equal(info.pendingCommit, true);
    assert.equal(await app.deferred.getTask(info.id), undefined, 'nothing written before commit');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runs.length, 0);
    await tx.commit();
    assert.equal((await info.wait()).status, 'succeeded');
    assert.deepEqual(runs, ['committed']);
  });

  it('a rollback enqueues nothing and leaves no record', async () => {
    let id = '';
    await assert.rejects(
      stores.transaction(async (tx) => {
        id = (await app.deferred.defer('note', ['rolled back'], { transaction: tx })).id;
        throw new Error('business rule failed');
      }),
      /business rule failed/,
    );
    await app.deferred.drain();
    assert.equal(runs.length, 0);
    assert.equal(await app.deferred.getTask(id), undefined);
    assert.equal((await stores.state.listOutbox(Date.now() + 1, 10)).length, 0);
  });

  it('a large payload stays transactional', async () => {
    const tx = stores.beginTransaction();
    const big = 'z'.repeat(300 * 1024);
    const info = await app.deferred.defer('note', [big], { transaction: tx });
    assert.equal(await stores.payloads.get(info.id), undefined, 'payload not written before commit');
    tx.rollback();
    assert.equal(await stores.payloads.get(info.id), undefined);
    const tx2 = stores.beginTransaction();
    const info2 = await app.deferred.defer('note', [big], { transaction: tx2 });
    await tx2.commit();
    await info2.wait();
    assert.equal(runs[0], big);
  });

  it('a transaction object no configured store can join is refused with a clear error', async () => {
    await assert.rejects(app.deferred.defer('note', [1], { transaction: { commit() {} } }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'INVALID_OPTION');
      assert.match(err.message, /memory/);
      return true;
    });
  });

  it('sweepOutbox() enqueues a committed defer whose enqueue never happened, exactly once', async () => {
    // Simulate a crash between commit and enqueue: commit the writes but skip the after-commit step.
    const tx = stores.beginTransaction();
    const info = await app.deferred.defer('note', ['recovered'], { transaction: tx });
    (tx as unknown as { staged: Array<{ afterCommit: () => Promise<void> }> }).staged.forEach((s) => {
      s.afterCommit = async () => undefined;
    });
    await tx.commit();
    assert.equal((await app.deferred.getTask(info.id))?.status, 'queued');
    const [first, second] = await Promise.all([app.deferred.sweepOutbox({ graceMs: 0 }), app.deferred.sweepOutbox({ graceMs: 0 })]);
    assert.ok(first.enqueued + second.enqueued >= 1);
    await info.wait();
    await app.deferred.drain();
    assert.deepEqual(runs, ['recovered'], 'ran once although two sweepers raced');
    assert.equal((await stores.state.listOutbox(Date.now() + 1, 10)).length, 0);
  });
});
