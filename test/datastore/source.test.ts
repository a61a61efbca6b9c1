/** The Datastore kind as an iteration source: __scatter__ splits, the fallback, key-ordered pages, filters. */
import assert from 'node:assert/strict';
import type { Datastore, Key, Query } from '@google-cloud/datastore';
import { datastoreQuery, datastoreQuerySource, datastoreStores, type DatastoreKeyRange, type DatastoreQuerySpec } from '../../adapters/datastore/index.js';
import { compareKeyPaths, toKeyPath } from '../../adapters/datastore/key-paths.js';
import { currentShardIndex, type DeferredTask } from '../../src/index.js';
import { datastoreForTests, type DatastoreForTests } from '../emulators/datastore/harness.js';
import { startApp } from '../helpers/app.js';
import { fillKind } from './entities.js';

const ids = (n: number, prefix = 'item') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);

/** Every item of every range, read in pages of `pageSize`, per range. */
async function walk(datastore: Datastore, ranges: DatastoreKeyRange[], pageSize: number): Promise<unknown[][]> {
  const source = datastoreQuerySource(datastore);
  const perRange: unknown[][] = [];
  for (const range of ranges) {
    const values: unknown[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await source.read(range, after, pageSize);
      assert.ok(page.items.length <= pageSize);
      values.push(...page.items.map((item) => item.value));
      after = page.items.at(-1)?.key ?? after;
      if (page.done) break;
    }
    perRange.push(values);
  }
  return perRange;
}

/** A client whose __scatter__ samples come back empty, as for a kind the service gave no scatter values. */
function withoutScatter(datastore: Datastore): Datastore {
  return new Proxy(datastore, {
    get(target, property, receiver) {
      if (property !== 'runQuery') return Reflect.get(target, property, receiver);
      return (query: Query) => (query.orders.some((order) => order.name === '__scatter__') ? Promise.resolve([[], {}]) : target.runQuery(query));
    },
  });
}

describe('Datastore iteration source', function () {
  this.timeout(60_000);
  let env: DatastoreForTests;
  let datastore: Datastore;
  before(async () => {
    env = await datastoreForTests();
    datastore = env.datastore;
  });
  after(async () => env.stop());

  it('splits a kind into N key ranges at sampled __scatter__ keys that together hold every entity once, in key order', async () => {
    const items = ids(1000);
    const spec = datastoreQuery(await fillKind(datastore, items), { select: 'id' }).spec;
    const ranges = await datastoreQuerySource(datastore).split(spec, 5);
    assert.equal(ranges.length, 5);
    const perRange = (await walk(datastore, ranges, 37)) as string[][];
    assert.deepEqual(perRange.flat(), items, 'ranges in order, each in key order, every entity once');
    if (!env.external)
      assert.ok(
        perRange.every((values) => values.length > 50),
        `balanced enough: ${perRange.map((v) => v.length)}`,
      );
  });

  it('splits evenly over the keys read in key order when sampling returns too few keys', async () => {
    const items = ids(100);
    const spec = datastoreQuery(await fillKind(datastore, items), { select: 'id' }).spec;
    const ranges = await datastoreQuerySource(withoutScatter(datastore)).split(spec, 4);
    const perRange = (await walk(datastore, ranges, 10)) as string[][];
    assert.deepEqual(
      perRange.map((values) => values.length),
      [25, 25, 25, 25],
    );
    assert.deepEqual(perRange.flat(), items);
  });

  it('gives a kind with fewer entities than shards one range per entity, and an empty kind none', async () => {
    const spec = datastoreQuery(await fillKind(datastore, ids(3)), { select: 'id' }).spec;
    const source = datastoreQuerySource(datastore);
    assert.equal((await source.split(spec, 5)).length, 3);
    assert.deepEqual(await source.split({ kind: 'NeverWritten' }, 5), []);
  });

  it('applies equality and range filters to every range, and hands out entities, keys or ids', async () => {
    const items = ids(60);
    const kind = await fillKind(datastore, items);
    const base: DatastoreQuerySpec = {
      kind,
      filters: [
        ['n', '>=', 10],
        ['n', '<', 50],
      ],
    };
    const source = datastoreQuerySource(datastore);
    const entities = (await walk(datastore, await source.split(base, 3), 7)).flat() as Array<Record<string | symbol, unknown>>;
    assert.deepEqual(
      entities.map((e) => e.n),
      Array.from({ length: 40 }, (_, i) => 10 + i),
    );
    assert.ok(
      entities.every((e) => (e[datastore.KEY] as Key).name === items[e.n as number]),
      'entities carry their keys',
    );
    const keys = (await walk(datastore, await source.split({ ...base, select: 'key' }, 2), 100)).flat() as Key[];
    assert.ok(keys.every((key) => datastore.isKey(key)) && keys.length === 40);
    // Google's legacy emulator (2.3.1) has no IN (nor OR); the legacy databases in the cloud do.
    if (env.google !== 'datastore-legacy') {
      const equal = (await walk(datastore, await source.split({ kind, select: 'id', filters: [['n', 'IN', [3, 33, 59]]] }, 2), 100)).flat();
      assert.deepEqual(equal, [items[3], items[33], items[59]]);
    }
  });

  it('an inequality filter walks in value order by cursors, and resumes after any item of a page (a shard stopped mid-page)', async () => {
    const items = ids(50);
    const kind = await fillKind(datastore, items);
    const source = datastoreQuerySource(datastore);
    const spec: DatastoreQuerySpec = {
      kind,
      select: 'id',
      filters: [
        ['n', '>', 4],
        ['n', '<=', 44],
      ],
    };
    const ranges = await source.split(spec, 3);
    assert.equal(ranges.length, 3);
    assert.deepEqual((await walk(datastore, ranges, 6)).flat(), items.slice(5, 45), 'every shard, each once, in order');
    for (const range of ranges) {
      const page = await source.read(range, undefined, 4);
      const whole = (await walk(datastore, [range], 100)).flat();
      for (let i = 0; i < page.items.length; i += 1) {
        const rest = await source.read(range, page.items[i]!.key, 100);
        assert.deepEqual(
          rest.items.map((item) => item.value),
          whole.slice(i + 1),
          `resuming after item ${i}`,
        );
      }
    }
  });

  it('orders keys as Datastore does: ids before names, ids by value, names by UTF-8 bytes, parents first', async () => {
    const kind = `Mixed${Date.now()}`;
    const paths: Array<Array<string | number>> = [
      [kind, 'b'],
      [kind, 100],
      [kind, 'B'],
      [kind, 7],
      [kind, 'é'],
      [kind, 'z'],
      [kind, 2 ** 40],
      [kind, 'a', kind, 1],
    ];
    await datastore.save(
      paths.map((path) => ({
        key: datastore.key({ namespace: datastore.namespace, path: path.map((p) => (typeof p === 'number' ? datastore.int(p) : p)) }),
        data: { v: 1 },
      })),
    );
    const [rows] = (await datastore.runQuery(
      datastore
        .createQuery(datastore.namespace ?? '', kind)
        .select('__key__')
        .order('__key__'),
    )) as [object[], unknown];
    const inServiceOrder = rows.map((row) => toKeyPath((row as Record<symbol, Key>)[datastore.KEY]!));
    const sorted = [...inServiceOrder].reverse().sort(compareKeyPaths);
    assert.deepEqual(sorted, inServiceOrder);
    const ranges = await datastoreQuerySource(datastore).split({ kind, select: 'key' }, 3);
    const walked = (await walk(datastore, ranges, 2)).flat() as Key[];
    assert.deepEqual(walked.map(toKeyPath), inServiceOrder, 'numeric ids, names and child keys walk in that order');
  });

  it("deferIteration over 10,000 entities (2,000 on Google's emulator) with 5 shards touches each once and finalizes once", async () => {
    // Google's emulator writes and reads far slower than ours.
    const count = env.google ? 2_000 : 10_000;
    const items = ids(count, 'ten');
    const kind = await fillKind(datastore, items);
    const stores = datastoreStores({ datastore });
    const seen = new Map<string, number>();
    const shards = new Set<number | undefined>();
    let finalized = 0;
    let visit!: DeferredTask<[string]>;
    let done!: DeferredTask<[]>;
    const app = await startApp('express', { stores, sources: [stores.source] }, (d) => {
      visit = d.task('visit', (id: string) => {
        seen.set(id, (seen.get(id) ?? 0) + 1);
        shards.add(currentShardIndex());
      });
      done = d.task('done', () => {
        finalized += 1;
      });
    });
    try {
      const info = await app.deferred.deferIteration<string>(datastoreQuery(kind, { select: 'id' }), visit, done, {
        shards: 5,
        pageSize: 500,
        deleteMarker: false,
      });
      await app.deferred.drain({ timeoutMs: 50_000 });
      await info.wait({ timeoutMs: 10_000 });
      assert.equal(seen.size, count);
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        'each entity once',
      );
      assert.deepEqual(shards, new Set([0, 1, 2, 3, 4]));
      assert.equal(finalized, 1);
      const record = await app.deferred.getIteration(info.id);
      assert.equal(record?.status, 'succeeded');
      assert.equal(
        record?.shards.reduce((sum, shard) => sum + shard.processed, 0),
        count,
      );
    } finally {
      await app.close();
    }
  });
});
