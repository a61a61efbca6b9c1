/** Transactions through the official client: isolation, contention, closed transactions, rollback. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { PropertyFilter, type Datastore, type Key } from '@google-cloud/datastore';
import { assertRpcError, uniqueKind, useDatastore } from './test-support.js';

const CONTENTION = 'too much contention on these datastore entities. please try again.';

describe('datastore emulator: transactions', () => {
  const ctx = useDatastore();

  /** Read-modify-write in a transaction, retried on ABORTED as the client leaves that to callers. */
  async function increment(datastore: Datastore, key: Key): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const transaction = datastore.transaction();
      try {
        await transaction.run();
        const [counter] = await transaction.get(key);
        transaction.save({ key, data: { count: (counter?.count ?? 0) + 1 } });
        await transaction.commit();
        return attempt;
      } catch (error) {
        if ((error as { code?: number }).code !== status.ABORTED || attempt > 200) throw error;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  it('lets the first of two overlapping read-modify-writes commit and aborts the second', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Account'), 'acc']);
    await datastore.save({ key, data: { balance: 100 } });
    const first = datastore.transaction();
    const second = datastore.transaction();
    await first.run();
    await second.run();
    const [a] = await first.get(key);
    const [b] = await second.get(key);
    first.save({ key, data: { balance: a.balance - 30 } });
    second.save({ key, data: { balance: b.balance - 50 } });
    await first.commit();
    const failure = await assertRpcError(second.commit(), status.ABORTED, CONTENTION);
    assert.equal(failure.details, CONTENTION);
    const [after] = await datastore.get(key);
    assert.equal(after.balance, 70, 'only the first write landed');
  });

  it('loses no update: 20 concurrent increments with retries end at exactly 20', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Counter'), 'c']);
    const attempts = await Promise.all(Array.from({ length: 20 }, () => increment(datastore, key)));
    const [counter] = await datastore.get(key);
    assert.equal(counter.count, 20);
    assert.ok(
      attempts.some((n) => n > 1),
      'some increments had to retry',
    );
  });

  it('aborts a transaction whose query result set gained an entity (phantom)', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Job');
    await datastore.save({ key: datastore.key([kind, 'j1']), data: { state: 'open' } });
    const transaction = datastore.transaction();
    await transaction.run();
    const [open] = await transaction.runQuery(datastore.createQuery(kind).filter(new PropertyFilter('state', '=', 'open')));
    assert.equal(open.length, 1);
    await datastore.save({ key: datastore.key([kind, 'j2']), data: { state: 'open' } });
    transaction.save({ key: datastore.key([kind, 'summary']), data: { open: open.length } });
    await assertRpcError(transaction.commit(), status.ABORTED, CONTENTION);
  });

  it('commits transactions that touch different entities side by side', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Separate');
    const [x, y] = [datastore.key([kind, 'x']), datastore.key([kind, 'y'])];
    await datastore.save([
      { key: x, data: { n: 0 } },
      { key: y, data: { n: 0 } },
    ]);
    const first = datastore.transaction();
    const second = datastore.transaction();
    await Promise.all([first.run(), second.run()]);
    await first.get(x);
    await second.get(y);
    first.save({ key: x, data: { n: 1 } });
    second.save({ key: y, data: { n: 1 } });
    await first.commit();
    await second.commit();
    const [both] = await datastore.get([x, y]);
    assert.deepEqual(
      both.map((entity: { n: number }) => entity.n),
      [1, 1],
    );
  });

  it('reads one snapshot: a commit elsewhere after the first read is not seen', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Snapshot');
    const [a, b] = [datastore.key([kind, 'a']), datastore.key([kind, 'b'])];
    await datastore.save([
      { key: a, data: { n: 1 } },
      { key: b, data: { n: 1 } },
    ]);
    const transaction = datastore.transaction({ readOnly: true });
    await transaction.run();
    await transaction.get(a);
    await datastore.save({ key: b, data: { n: 2 } });
    const [seen] = await transaction.get(b);
    assert.equal(seen.n, 1);
    await transaction.commit();
  });

  it('begins a transaction lazily with the first read when run() was not called', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Lazy'), 'l']);
    await datastore.save({ key, data: { n: 1 } });
    const transaction = datastore.transaction();
    const [entity] = await transaction.get(key);
    transaction.save({ key, data: { n: entity.n + 1 } });
    await transaction.commit();
    const [after] = await datastore.get(key);
    assert.equal(after.n, 2);
  });

  it('answers INVALID_ARGUMENT for a transaction already committed or rolled back', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('Closed'), name: 'c' }] };
    const [begun] = await raw.beginTransaction({ projectId });
    await raw.commit({ projectId, mode: 'TRANSACTIONAL', transaction: begun.transaction, mutations: [{ upsert: { key } }] });
    await assertRpcError(raw.lookup({ projectId, keys: [key], readOptions: { transaction: begun.transaction } }), status.INVALID_ARGUMENT);
    await assertRpcError(raw.commit({ projectId, mode: 'TRANSACTIONAL', transaction: begun.transaction, mutations: [] }), status.INVALID_ARGUMENT);
    const [other] = await raw.beginTransaction({ projectId });
    await raw.rollback({ projectId, transaction: other.transaction });
    await assertRpcError(
      raw.runQuery({ projectId, partitionId, query: { kind: [{ name: 'Closed' }] }, readOptions: { transaction: other.transaction } }),
      status.INVALID_ARGUMENT,
    );
  });

  it('discards the writes of a rolled back transaction', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Rolled'), 'r']);
    const transaction = datastore.transaction();
    await transaction.run();
    transaction.save({ key, data: { n: 1 } });
    await transaction.rollback();
    const [entity] = await datastore.get(key);
    assert.equal(entity, undefined);
  });

  it('refuses writes in a read-only transaction', async () => {
    const { raw, projectId, partitionId } = ctx();
    const [begun] = await raw.beginTransaction({ projectId, transactionOptions: { readOnly: {} } });
    const key = { partitionId, path: [{ kind: uniqueKind('ReadOnly'), name: 'r' }] };
    await assertRpcError(
      raw.commit({ projectId, mode: 'TRANSACTIONAL', transaction: begun.transaction, mutations: [{ upsert: { key } }] }),
      status.INVALID_ARGUMENT,
    );
  });

  it('aborts a blind write when another commit changed the entity after the transaction began', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('Blind'), name: 'b' }] };
    const [begun] = await raw.beginTransaction({ projectId });
    await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: { key, properties: { by: { stringValue: 'other' } } } }] });
    await assertRpcError(
      raw.commit({
        projectId,
        mode: 'TRANSACTIONAL',
        transaction: begun.transaction,
        mutations: [{ upsert: { key, properties: { by: { stringValue: 'mine' } } } }],
      }),
      status.ABORTED,
      CONTENTION,
    );
  });

  it('pages a query inside a transaction and still commits', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('TxPaged');
    await datastore.save(Array.from({ length: 650 }, (_, n) => ({ key: datastore.key([kind, n + 1]), data: { n } })));
    const transaction = datastore.transaction();
    const [rows] = await transaction.runQuery(datastore.createQuery(kind));
    assert.equal(rows.length, 650);
    transaction.save({ key: datastore.key([kind, 'total']), data: { total: rows.length } });
    await transaction.commit();
    const [total] = await datastore.get(datastore.key([kind, 'total']));
    assert.equal(total.total, 650);
  });
});
