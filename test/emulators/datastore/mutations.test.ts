/** Commit and its mutations through the official client: insert, update, upsert, delete, ids, versions. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { assertRpcError, uniqueKind, useDatastore } from './test-support.js';

describe('datastore emulator: mutations', () => {
  const ctx = useDatastore();

  it('inserts a new entity and refuses to insert it again with ALREADY_EXISTS', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Insert'), 'a']);
    await datastore.insert({ key, data: { n: 1 } });
    await assertRpcError(datastore.insert({ key, data: { n: 2 } }), status.ALREADY_EXISTS);
    const [entity] = await datastore.get(key);
    assert.equal(entity.n, 1, 'the failed insert changed nothing');
  });

  it('updates an existing entity and answers NOT_FOUND for a missing one', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Update');
    const key = datastore.key([kind, 'present']);
    await datastore.insert({ key, data: { n: 1, gone: true } });
    await datastore.update({ key, data: { n: 2 } });
    const [entity] = await datastore.get(key);
    assert.deepEqual(Object.entries(entity), [['n', 2]], 'update replaces the whole entity');
    await assertRpcError(datastore.update({ key: datastore.key([kind, 'missing']), data: { n: 1 } }), status.NOT_FOUND);
    const [missing] = await datastore.get(datastore.key([kind, 'missing']));
    assert.equal(missing, undefined);
  });

  it('upserts whether or not the entity exists', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('Upsert'), 'u']);
    await datastore.upsert({ key, data: { n: 1 } });
    await datastore.upsert({ key, data: { n: 2 } });
    const [entity] = await datastore.get(key);
    assert.equal(entity.n, 2);
  });

  it('deletes an entity, and deleting a missing one is a no-op', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Delete');
    const key = datastore.key([kind, 'd']);
    await datastore.save({ key, data: { n: 1 } });
    await datastore.delete(key);
    assert.equal((await datastore.get(key))[0], undefined);
    await datastore.delete(key);
    await datastore.delete(datastore.key([kind, 'never-existed']));
  });

  it('applies nothing when one mutation of a commit fails', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Atomic');
    const existing = datastore.key([kind, 'existing']);
    await datastore.insert({ key: existing, data: { n: 1 } });
    const fresh = datastore.key([kind, 'fresh']);
    await assertRpcError(
      datastore.insert([
        { key: fresh, data: { n: 1 } },
        { key: existing, data: { n: 2 } },
      ]),
      status.ALREADY_EXISTS,
    );
    assert.equal((await datastore.get(fresh))[0], undefined, 'the valid insert was not applied either');
  });

  it('allocates distinct ids for incomplete keys and returns them to the client', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Auto');
    const keys = [datastore.key(kind), datastore.key(kind), datastore.key(kind)];
    await datastore.save(keys.map((key, n) => ({ key, data: { n } })));
    const ids = keys.map((key) => key.id);
    assert.ok(
      ids.every((id) => typeof id === 'string' && /^[1-9]\d*$/.test(id)),
      `numeric ids: ${ids.join(', ')}`,
    );
    assert.equal(new Set(ids).size, 3);
    const [read] = await datastore.get(keys);
    assert.equal(read.length, 3);
  });

  it('allocates ids with AllocateIds without writing anything', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Allocated');
    const [keys] = await datastore.allocateIds(datastore.key(kind), 5);
    assert.equal(keys.length, 5);
    assert.equal(new Set(keys.map((key) => key.id)).size, 5);
    const [found] = await datastore.get(keys);
    assert.equal(found.length, 0);
  });

  it('gives every write a new, larger version and reports it in the mutation result', async () => {
    const { datastore, raw, projectId, partitionId } = ctx();
    const key = datastore.key([uniqueKind('Versioned'), 'v']);
    const [first] = await datastore.save({ key, data: { n: 1 } });
    const [second] = await datastore.save({ key, data: { n: 2 } });
    const v1 = BigInt(first.mutationResults![0].version as string);
    const v2 = BigInt(second.mutationResults![0].version as string);
    assert.ok(v1 > 0n && v2 > v1, `versions increase: ${v1} then ${v2}`);
    const [lookup] = await raw.lookup({
      projectId,
      keys: [{ partitionId, path: [{ kind: key.kind, name: 'v' }] }],
    });
    assert.equal(String(lookup.found![0].version), v2.toString(), 'Lookup reports the version of the last write');
    await datastore.delete(key);
    await datastore.save({ key, data: { n: 3 } });
    const [again] = await raw.lookup({ projectId, keys: [{ partitionId, path: [{ kind: key.kind, name: 'v' }] }] });
    assert.ok(BigInt(String(again.found![0].version)) > v2, 'a re-created entity still gets a larger version');
  });

  it('detects a stale base_version and leaves the entity alone', async () => {
    const { raw, projectId, partitionId } = ctx();
    const path = [{ kind: uniqueKind('Based'), name: 'b' }];
    const entity = (n: number) => ({ key: { partitionId, path }, properties: { n: { integerValue: n } } });
    const [created] = await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: entity(1) }] });
    const base = created.mutationResults![0].version;
    const [applied] = await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ update: entity(2), baseVersion: base }] });
    assert.equal(applied.mutationResults![0].conflictDetected, false);
    const [stale] = await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ update: entity(3), baseVersion: base }] });
    assert.equal(stale.mutationResults![0].conflictDetected, true);
    assert.equal(String(stale.mutationResults![0].version), String(applied.mutationResults![0].version));
    const [lookup] = await raw.lookup({ projectId, keys: [{ partitionId, path }] });
    assert.equal(String(lookup.found![0].entity!.properties!.n.integerValue), '2');
  });

  it('writes only the properties named in a mutation property mask', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('Masked'), name: 'm' }] };
    const properties = { a: { integerValue: 1 }, b: { integerValue: 1 }, c: { integerValue: 1 } };
    await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: { key, properties } }] });
    await raw.commit({
      projectId,
      mode: 'NON_TRANSACTIONAL',
      mutations: [{ update: { key, properties: { a: { integerValue: 2 } } }, propertyMask: { paths: ['a', 'c'] } }],
    });
    const [lookup] = await raw.lookup({ projectId, keys: [key] });
    const stored = lookup.found![0].entity!.properties!;
    assert.deepEqual(Object.keys(stored).sort(), ['a', 'b'], 'c was masked but absent: removed');
    assert.equal(String(stored.a.integerValue), '2');
    assert.equal(String(stored.b.integerValue), '1', 'b was outside the mask: kept');
  });

  it('commits with a single-use transaction', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('SingleUse'), name: 's' }] };
    const [response] = await raw.commit({
      projectId,
      mode: 'TRANSACTIONAL',
      singleUseTransaction: { readWrite: {} },
      mutations: [{ insert: { key, properties: { n: { integerValue: 1 } } } }],
    });
    assert.ok(BigInt(String(response.mutationResults![0].version)) > 0n);
    const [lookup] = await raw.lookup({ projectId, keys: [key] });
    assert.equal(lookup.found!.length, 1);
  });

  it('refuses two mutations of one entity in a non-transactional commit', async () => {
    const { raw, projectId, partitionId } = ctx();
    const key = { partitionId, path: [{ kind: uniqueKind('Twice'), name: 't' }] };
    await assertRpcError(raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: { key } }, { delete: key }] }), status.INVALID_ARGUMENT);
  });

  it('refuses incomplete keys where an entity must exist', async () => {
    const { datastore } = ctx();
    await assertRpcError(datastore.update({ key: datastore.key(uniqueKind('NoId')), data: { n: 1 } }), status.INVALID_ARGUMENT);
  });
});
