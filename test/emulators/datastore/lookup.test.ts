/** Lookup through the official client: found, missing, value types, read options. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { assertRpcError, uniqueKind, useDatastore } from './test-support.js';

describe('datastore emulator: lookup', () => {
  const ctx = useDatastore();

  it('returns found entities and lists the missing keys', async () => {
    const { datastore, raw, projectId, partitionId } = ctx();
    const kind = uniqueKind('Look');
    await datastore.save({ key: datastore.key([kind, 'here']), data: { n: 1 } });
    const [entities] = await datastore.get([datastore.key([kind, 'here']), datastore.key([kind, 'absent'])]);
    assert.equal(entities.length, 1, 'the client returns only what was found');
    assert.equal(entities[0][datastore.KEY].name, 'here');

    const [response] = await raw.lookup({
      projectId,
      keys: [
        { partitionId, path: [{ kind, name: 'here' }] },
        { partitionId, path: [{ kind, name: 'absent' }] },
      ],
    });
    assert.equal(response.found!.length, 1);
    assert.equal(response.missing!.length, 1);
    assert.equal(response.missing![0].entity!.key!.path![0].name, 'absent');
    assert.ok(BigInt(String(response.missing![0].version)) > 0n, 'missing results carry the snapshot version');
    assert.deepEqual(response.deferred, []);
    assert.ok(response.found![0].createTime && response.found![0].updateTime);
  });

  it('keeps every value type', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Types');
    const other = datastore.key(['Other', 7]);
    const when = new Date('2024-05-06T07:08:09.123Z');
    const data = {
      nothing: null,
      yes: true,
      count: 42,
      big: datastore.int('9007199254740993'),
      ratio: datastore.double(1.5),
      when,
      ref: other,
      text: 'héllo',
      bytes: Buffer.from([0, 1, 2, 255]),
      list: [1, 'two', 3],
      nested: { inner: 'value', deeper: { n: 1 } },
      place: datastore.geoPoint({ latitude: 52.5, longitude: 13.4 }),
    };
    const key = datastore.key([kind, 'all']);
    await datastore.save({ key, data });
    const [entity] = await datastore.get(key, { wrapNumbers: true });
    assert.equal(entity.nothing, null);
    assert.equal(entity.yes, true);
    assert.equal(entity.count.value, '42');
    assert.equal(entity.big.value, '9007199254740993', 'int64 beyond 2^53 survives');
    assert.equal(entity.ratio, 1.5);
    assert.equal(entity.when.toISOString(), when.toISOString());
    assert.deepEqual(entity.ref.path, ['Other', '7'], 'the client reads int64 ids back as strings');
    assert.equal(entity.text, 'héllo');
    assert.deepEqual(entity.bytes, Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(
      entity.list.map((v: { value?: string } | string) => (typeof v === 'string' ? v : v.value)),
      ['1', 'two', '3'],
    );
    assert.equal(entity.nested.inner, 'value');
    assert.equal(entity.nested.deeper.n.value, '1');
    assert.deepEqual({ ...entity.place }, { latitude: 52.5, longitude: 13.4 });
  });

  it('stores timestamps to the microsecond, rounding down', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('Micros'), name: 'm' }] };
    const timestampValue = { seconds: 1_700_000_000, nanos: 123_456_789 };
    await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: { key, properties: { at: { timestampValue } } } }] });
    const [response] = await raw.lookup({ projectId, keys: [key] });
    assert.equal(response.found![0].entity!.properties!.at.timestampValue!.nanos, 123_456_000);
  });

  it('begins a transaction when a lookup asks for one and returns its id', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('NewTx'), name: 'n' }] };
    const [response] = await raw.lookup({ projectId, keys: [key], readOptions: { newTransaction: { readWrite: {} } } });
    assert.ok(response.transaction && response.transaction.length > 0, 'the new transaction id comes back');
    await raw.commit({
      projectId,
      mode: 'TRANSACTIONAL',
      transaction: response.transaction,
      mutations: [{ insert: { key, properties: { n: { integerValue: 1 } } } }],
    });
    const [after] = await raw.lookup({ projectId, keys: [key] });
    assert.equal(after.found!.length, 1);
  });

  it('treats eventual consistency as strong: a read sees the last commit', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Eventual'), 'e']);
    await datastore.save({ key, data: { n: 1 } });
    const [entity] = await datastore.get(key, { consistency: 'eventual' });
    assert.equal(entity.n, 1);
  });

  it('refuses more than 1000 keys in one lookup', async () => {
    const { raw, projectId, partitionId } = ctx();
    const kind = uniqueKind('Many');
    const keys = Array.from({ length: 1001 }, (_, i) => ({ partitionId, path: [{ kind, id: i + 1 }] }));
    await assertRpcError(raw.lookup({ projectId, keys }), status.INVALID_ARGUMENT);
  });

  it('refuses incomplete keys', async () => {
    const { raw, projectId, partitionId } = ctx();
    await assertRpcError(raw.lookup({ projectId, keys: [{ partitionId, path: [{ kind: 'NoId' }] }] }), status.INVALID_ARGUMENT);
  });
});
