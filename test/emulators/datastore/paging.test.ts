/** Batches, cursors and the client's auto-paging over large result sets. */
import * as assert from 'node:assert/strict';
import { PropertyFilter } from '@google-cloud/datastore';
import { uniqueKind, useDatastore } from './test-support.js';

const TOTAL = 1250;
const WRITE_CHUNK = 250;

describe('datastore emulator: batches and cursors', () => {
  const ctx = useDatastore();
  const kind = uniqueKind('Item');

  before(async () => {
    const { datastore } = ctx();
    for (let start = 0; start < TOTAL; start += WRITE_CHUNK) {
      const chunk = Array.from({ length: WRITE_CHUNK }, (_, i) => start + i);
      await datastore.save(chunk.map((n) => ({ key: datastore.key([kind, n + 1]), data: { n, even: n % 2 === 0 } })));
    }
  });

  it('returns more than 1000 results through the client, which follows endCursor while NOT_FINISHED', async () => {
    const { datastore } = ctx();
    const [rows, info] = await datastore.runQuery(datastore.createQuery(kind).order('n'));
    assert.equal(rows.length, TOTAL);
    assert.deepEqual(
      rows.map((row) => row.n),
      Array.from({ length: TOTAL }, (_, n) => n),
    );
    assert.equal(info.moreResults, datastore.NO_MORE_RESULTS);
  });

  it('sends results in batches of at most 300 with NOT_FINISHED and an end cursor', async () => {
    const { raw, projectId, partitionId, external } = ctx();
    const [response] = await raw.runQuery({ projectId, partitionId, query: { kind: [{ name: kind }] } });
    const batch = response.batch!;
    assert.equal(batch.moreResults, 'NOT_FINISHED');
    assert.ok(batch.endCursor && batch.endCursor.length > 0);
    if (!external) assert.equal(batch.entityResults!.length, 300);
    const [next] = await raw.runQuery({
      projectId,
      partitionId,
      query: { kind: [{ name: kind }], startCursor: batch.endCursor },
    });
    const firstOfNext = next.batch!.entityResults![0].entity!.key!.path![0].id;
    const lastOfFirst = batch.entityResults![batch.entityResults!.length - 1].entity!.key!.path![0].id;
    assert.ok(BigInt(String(firstOfNext)) > BigInt(String(lastOfFirst)), 'the next batch starts after the cursor');
  });

  it('pages by hand with limit and start cursors, each page ending MORE_RESULTS_AFTER_LIMIT', async () => {
    const { datastore } = ctx();
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 4; page++) {
      let query = datastore
        .createQuery(kind)
        .filter(new PropertyFilter('n', '<', 70))
        .order('n')
        .limit(20);
      if (cursor) query = query.start(cursor);
      const [rows, info] = await datastore.runQuery(query);
      seen.push(...rows.map((row) => row.n as number));
      if (rows.length === 20) assert.equal(info.moreResults, datastore.MORE_RESULTS_AFTER_LIMIT);
      cursor = info.endCursor;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 70 }, (_, n) => n),
    );
  });

  it('returns nothing for a limit of 0, which the API allows (the Node client never sends it)', async () => {
    const { raw, projectId, partitionId } = ctx();
    const [response] = await raw.runQuery({ projectId, partitionId, query: { kind: [{ name: kind }], limit: { value: 0 } } });
    assert.equal(response.batch!.entityResults!.length, 0);
    assert.notEqual(response.batch!.moreResults, 'NOT_FINISHED');
  });

  it('stops at an end cursor', async () => {
    const { datastore } = ctx();
    const [firstPage, info] = await datastore.runQuery(datastore.createQuery(kind).order('n').limit(5));
    assert.equal(firstPage.length, 5);
    const [bounded] = await datastore.runQuery(datastore.createQuery(kind).order('n').end(info.endCursor!));
    assert.deepEqual(
      bounded.map((row) => row.n),
      [0, 1, 2, 3, 4],
    );
  });

  it('keeps a cursor valid after the entity it points at is deleted', async () => {
    const { datastore } = ctx();
    const local = uniqueKind('Gone');
    await datastore.save([1, 2, 3, 4].map((n) => ({ key: datastore.key([local, n]), data: { n } })));
    const [rows, info] = await datastore.runQuery(datastore.createQuery(local).order('n').limit(2));
    assert.deepEqual(
      rows.map((row) => row.n),
      [1, 2],
    );
    await datastore.delete(datastore.key([local, 2]));
    const [rest] = await datastore.runQuery(datastore.createQuery(local).order('n').start(info.endCursor!));
    assert.deepEqual(
      rest.map((row) => row.n),
      [3, 4],
    );
  });

  it('applies a large offset and limit across batches', async () => {
    const { datastore } = ctx();
    const [rows] = await datastore.runQuery(datastore.createQuery(kind).order('n').offset(1000).limit(120));
    assert.equal(rows.length, 120);
    assert.equal(rows[0].n, 1000);
    assert.equal(rows[119].n, 1119);
  });

  it('walks a filtered keys-only query past one batch', async () => {
    const { datastore } = ctx();
    const query = datastore
      .createQuery(kind)
      .filter(new PropertyFilter('even', '=', true))
      .select('__key__');
    const [rows] = await datastore.runQuery(query);
    assert.equal(rows.length, TOTAL / 2);
    assert.ok(
      rows.every((row) => Number(row[datastore.KEY].id) % 2 === 1),
      'n even means id odd',
    );
  });

  it('samples keys in a stable pseudo-random order with __scatter__', async () => {
    const { datastore, external } = ctx();
    const sample = () => datastore.runQuery(datastore.createQuery(kind).select('__key__').order('__scatter__').limit(32));
    const [first] = await sample();
    assert.ok(first.length > 0 && first.length <= 32);
    const ids = first.map((row) => Number(row[datastore.KEY].id));
    assert.equal(new Set(ids).size, ids.length, 'distinct keys');
    assert.ok(
      ids.every((id) => id >= 1 && id <= TOTAL),
      'keys of the kind',
    );
    if (!external) {
      assert.equal(first.length, 32, 'every entity has a scatter value here');
      const sorted = [...ids].sort((a, b) => a - b);
      assert.notDeepEqual(ids, sorted, 'not in key order');
      const [again] = await sample();
      assert.deepEqual(
        again.map((row) => Number(row[datastore.KEY].id)),
        ids,
        'deterministic',
      );
    }
  });
});
