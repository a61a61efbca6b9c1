/** The Firestore iteration source: splitting (PartitionQuery, or scanned names), reading shards by cursor, and deferIteration over it. */
import assert from 'node:assert/strict';
import type { Firestore } from '@google-cloud/firestore';
import { firestoreQuery, firestoreQuerySource, firestoreStores, type FirestoreQueryRange, type FirestoreQuerySpec } from '../../adapters/firestore/index.js';
import { createCodec } from '../../src/core/codec.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { IterationSource } from '../../src/core/iteration.js';
import { currentShardIndex, type DeferredTask } from '../../src/index.js';
import { startApp } from '../helpers/app.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { uniquePrefix } from './harness.js';
import { writeItems } from './items.js';

const ids = (n: number, prefix = 'doc') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);

/** `firestore`, recording the split points its collection groups' getPartitions() yields. */
function spyOnPartitions(firestore: Firestore, cuts: string[]): Firestore {
  return new Proxy(firestore, {
    get(target, property) {
      if (property === 'collectionGroup') {
        return (id: string) => {
          const group = target.collectionGroup(id);
          const getPartitions = group.getPartitions.bind(group);
          group.getPartitions = async function* (count: number) {
            for await (const partition of getPartitions(count)) {
              const end = partition.endBefore?.[0] as { path: string } | undefined;
              if (end) cuts.push(end.path);
              yield partition;
            }
          };
          return group;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('firestoreQuery source', function () {
  let env: FirestoreForTests;
  let firestore: Firestore;
  let prefix: string;
  let source: IterationSource<FirestoreQuerySpec, FirestoreQueryRange, unknown>;

  before(async function () {
    env = await firestoreForTests();
    firestore = env.firestore;
    prefix = uniquePrefix(env);
    source = firestoreQuerySource(firestore);
  });
  after(async function () {
    if (env?.external) await env.clear();
    await env?.stop();
  });

  /** Every item of every range, page by page from the last key; checks each page ascends. */
  async function readAll(ranges: FirestoreQueryRange[], pageSize = 7): Promise<unknown[][]> {
    const perRange: unknown[][] = [];
    for (const range of ranges) {
      const values: unknown[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await source.read(range, after, pageSize);
        const keys = page.items.map((item) => item.key);
        assert.deepEqual(keys, [...keys].sort(), 'a page ascends by key');
        if (after !== undefined && keys.length) assert.ok(keys[0]! > after, 'pages start after the cursor');
        values.push(...page.items.map((item) => item.value));
        if (page.done) break;
        after = keys[keys.length - 1];
      }
      perRange.push(values);
    }
    return perRange;
  }

  it('splits a collection into the shards asked for with getPartitions, and the ranges cover it once, in order', async function () {
    const path = `${prefix}Split`;
    await writeItems(firestore, path, ids(100));
    const cuts: string[] = [];
    const ranges = await firestoreQuerySource(spyOnPartitions(firestore, cuts)).split(firestoreQuery(path, { select: 'id' }).spec, 5);
    assert.equal(ranges.length, 5);
    // Google's emulator samples its split points and may give fewer; then names are scanned instead.
    if (!env.external) assert.deepEqual(ranges.slice(0, 4).map((range) => range.endBefore), cuts, 'the split points are the partition cursors');
    assert.equal(ranges[0]!.startAt, undefined);
    assert.equal(ranges[4]!.endBefore, undefined);
    for (let i = 1; i < 5; i += 1) assert.equal(ranges[i]!.startAt, ranges[i - 1]!.endBefore, 'contiguous');
    const perRange = await readAll(ranges);
    assert.deepEqual(perRange.flat(), ids(100));
    assert.ok(perRange.every((values) => values.length > 0));
  });

  it('a subcollection whose id other collections share: split points outside it are dropped, names are scanned instead', async function () {
    const members = `${prefix}Members`;
    await writeItems(firestore, `${prefix}Orgs/a/${members}`, ids(30, 'a'));
    await writeItems(firestore, `${prefix}Orgs/b/${members}`, ids(500, 'b'));
    const ranges = await source.split(firestoreQuery(`${prefix}Orgs/a/${members}`, { select: 'id' }).spec, 3);
    assert.equal(ranges.length, 3);
    const perRange = await readAll(ranges);
    assert.deepEqual(perRange.flat(), ids(30, 'a'));
    assert.deepEqual(perRange.map((values) => values.length), [10, 10, 10]);
    const group = await source.split(firestoreQuery(members, { collectionGroup: true, select: 'path' }).spec, 4);
    assert.equal(group.length, 4);
    assert.equal(new Set((await readAll(group)).flat()).size, 530, 'a collection group query covers every collection of that id');
  });

  it('filters (with Date values) apply within every range, and select picks what the callback gets', async function () {
    const path = `${prefix}Filtered`;
    const base = Date.UTC(2026, 0, 1);
    const batch = firestore.batch();
    for (let i = 0; i < 20; i += 1) batch.set(firestore.collection(path).doc(`u${String(i).padStart(2, '0')}`), { plan: i % 2 ? 'pro' : 'free', at: new Date(base + i * 1000), i });
    await batch.commit();
    const spec = firestoreQuery(path, { where: [['plan', '==', 'pro'], ['at', '>=', new Date(base + 10_000)]], select: 'data' }).spec;
    // Shards carry their range through the codec: it must survive it.
    const codec = createCodec();
    const ranges = (await source.split(spec, 3)).map((range) => codec.decodeArgs(codec.encodeArgs([range]))[0] as FirestoreQueryRange);
    const data = (await readAll(ranges, 2)).flat() as Array<{ i: number }>;
    assert.deepEqual(data.map((d) => d.i), [11, 13, 15, 17, 19]);
    const [snapshot] = (await readAll([{ ...spec, select: undefined }], 50)).flat() as Array<{ id: string; ref: { path: string } }>;
    assert.equal(snapshot!.id, 'u11', 'the default is the document snapshot');
    const [docPath] = (await readAll([{ ...spec, select: 'path' }], 50)).flat();
    assert.equal(docPath, `${path}/u11`);
  });

  it('an empty collection is one empty range', async function () {
    const ranges = await source.split(firestoreQuery(`${prefix}Empty`).spec, 4);
    assert.deepEqual((await readAll(ranges)).flat(), []);
  });

  it('firestoreQuery refuses what is not a collection path', function () {
    assert.throws(() => firestoreQuery('users/u1'), (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_OPTION');
    assert.throws(() => firestoreQuery('orgs/a/members', { collectionGroup: true }), /collection id/);
    assert.equal(firestoreQuery(firestore.collection('orgs/a/members')).spec.collection, 'orgs/a/members');
  });

  it('deferIteration over 10,000 documents with 5 shards touches each once and finalizes once', async function () {
    const path = `${prefix}Big`;
    const all = ids(10_000, 'big');
    await writeItems(firestore, path, all);
    const stores = firestoreStores({ firestore, collectionPrefix: prefix });
    const touched = new Map<string, number>();
    const shards = new Set<number | undefined>();
    let finalized = 0;
    let visit!: DeferredTask<[string]>;
    let done!: DeferredTask<[]>;
    const app = await startApp('express', { stores, sources: [stores.source] }, (d) => {
      visit = d.task('visit', (id: string) => {
        touched.set(id, (touched.get(id) ?? 0) + 1);
        shards.add(currentShardIndex());
      });
      done = d.task('done', () => void (finalized += 1));
    });
    try {
      const info = await app.deferred.deferIteration<string>(firestoreQuery(path, { select: 'id' }), visit, done, { shards: 5, pageSize: 500 });
      await app.deferred.drain({ timeoutMs: 100_000 });
      await info.wait({ timeoutMs: 10_000 });
      assert.equal(touched.size, 10_000);
      assert.ok([...touched.values()].every((count) => count === 1), 'each document once');
      assert.deepEqual(shards, new Set([0, 1, 2, 3, 4]));
      assert.equal(finalized, 1);
    } finally {
      await app.close();
    }
  });
});
