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
import { firestoreBackends, uniquePrefix } from './harness.js';
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

for (const { label, backend, google } of firestoreBackends())
  describe(`firestoreQuery source${label}`, function () {
    this.timeout(120_000);
    /** Google's emulator writes and reads far slower: the big walk is smaller there. */
    const big = google ? 2_000 : 10_000;
    let env: FirestoreForTests;
    let firestore: Firestore;
    let prefix: string;
    let source: IterationSource<FirestoreQuerySpec, FirestoreQueryRange, unknown>;

    before(async function () {
      env = await firestoreForTests(backend ? { backend } : {});
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
      if (!env.external)
        assert.deepEqual(
          ranges.slice(0, 4).map((range) => range.endBefore),
          cuts,
          'the split points are the partition cursors',
        );
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
      assert.deepEqual(
        perRange.map((values) => values.length),
        [10, 10, 10],
      );
      const group = await source.split(firestoreQuery(members, { collectionGroup: true, select: 'path' }).spec, 4);
      assert.equal(group.length, 4);
      assert.equal(new Set((await readAll(group)).flat()).size, 530, 'a collection group query covers every collection of that id');
    });

    it('filters (with Date values) apply within every range, and select picks what the callback gets', async function () {
      const path = `${prefix}Filtered`;
      const base = Date.UTC(2026, 0, 1);
      const batch = firestore.batch();
      for (let i = 0; i < 20; i += 1)
        batch.set(firestore.collection(path).doc(`u${String(i).padStart(2, '0')}`), { plan: i % 2 ? 'pro' : 'free', at: new Date(base + i * 1000), i });
      await batch.commit();
      const spec = firestoreQuery(path, {
        where: [
          ['plan', '==', 'pro'],
          ['at', '>=', new Date(base + 10_000)],
        ],
        select: 'data',
      }).spec;
      // Shards carry their range through the codec: it must survive it.
      const codec = createCodec();
      const ranges = (await source.split(spec, 3)).map((range) => codec.decodeArgs(codec.encodeArgs([range]))[0] as FirestoreQueryRange);
      const data = (await readAll(ranges, 2)).flat() as Array<{ i: number }>;
      assert.deepEqual(
        data.map((d) => d.i),
        [11, 13, 15, 17, 19],
      );
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
      assert.throws(
        () => firestoreQuery('users/u1'),
        (error: unknown) => error instanceof CloudDeferError && error.code === 'INVALID_OPTION',
      );
      assert.throws(() => firestoreQuery('orgs/a/members', { collectionGroup: true }), /collection id/);
      assert.equal(firestoreQuery(firestore.collection('orgs/a/members')).spec.collection, 'orgs/a/members');
    });

    it('inequality filters (<, <=, >, >=, !=, not-in) walk every shard in value order and cover the subset once', async function () {
      const path = `${prefix}Ranges`;
      const base = Date.UTC(2026, 0, 1);
      const batch = firestore.batch();
      // Values out of name order, repeated values, and documents the filters must leave out.
      for (let i = 0; i < 30; i += 1) {
        const data: Record<string, unknown> = { n: (i * 7) % 30, tier: i % 3, createdAt: new Date(base + ((i * 11) % 30) * 1000) };
        if (i === 29) data.tier = null;
        if (i === 28) delete data.tier;
        batch.set(firestore.collection(path).doc(`d${String(i).padStart(2, '0')}`), data);
      }
      await batch.commit();
      const cases: Array<{ where: FirestoreQuerySpec['where']; expected: (d: { n: number; tier?: number | null; t: number }) => boolean }> = [
        { where: [['createdAt', '<', new Date(base + 12_000)]], expected: (d) => d.t < 12 },
        {
          where: [
            ['n', '>=', 5],
            ['n', '<=', 20],
          ],
          expected: (d) => d.n >= 5 && d.n <= 20,
        },
        { where: [['n', '>', 25]], expected: (d) => d.n > 25 },
        // != and not-in leave out null and missing fields, as Firestore does.
        { where: [['tier', '!=', 1]], expected: (d) => typeof d.tier === 'number' && d.tier !== 1 },
        { where: [['tier', 'not-in', [0, 2]]], expected: (d) => typeof d.tier === 'number' && d.tier === 1 },
      ];
      const all = Array.from({ length: 30 }, (_, i) => ({
        id: `d${String(i).padStart(2, '0')}`,
        n: (i * 7) % 30,
        t: (i * 11) % 30,
        tier: i === 29 ? null : i === 28 ? undefined : i % 3,
      }));
      const codec = createCodec();
      for (const { where, expected } of cases) {
        const spec = firestoreQuery(path, { where, select: 'id' }).spec;
        const ranges = (await source.split(spec, 3)).map((range) => codec.decodeArgs(codec.encodeArgs([range]))[0] as FirestoreQueryRange);
        const perRange: string[][] = [];
        for (const range of ranges) {
          const values: string[] = [];
          let after: string | undefined;
          for (;;) {
            const page = await source.read(range, after, 2);
            values.push(...page.items.map((item) => item.value as string));
            after = page.items.at(-1)?.key ?? after;
            if (page.done) break;
          }
          perRange.push(values);
        }
        const got = perRange.flat();
        assert.deepEqual(
          [...got].sort(),
          all
            .filter(expected)
            .map((d) => d.id)
            .sort(),
          JSON.stringify(where),
        );
        assert.equal(new Set(got).size, got.length, 'each document once');
        assert.ok(perRange.length > 1, 'split into several shards');
      }
    });

    it("deferIteration with ['createdAt', '<', date] (and !=, not-in) runs and finalizes once", async function () {
      const path = `${prefix}Created`;
      const base = Date.UTC(2026, 0, 1);
      const batch = firestore.batch();
      for (let i = 0; i < 40; i += 1)
        batch.set(firestore.collection(path).doc(`c${String(i).padStart(2, '0')}`), { createdAt: new Date(base + ((i * 13) % 40) * 1000), kind: i % 4 });
      await batch.commit();
      const stores = firestoreStores({ firestore, collectionPrefix: prefix });
      const touched: string[] = [];
      let finalized = 0;
      let visit!: DeferredTask<[string]>;
      let done!: DeferredTask<[]>;
      const app = await startApp('express', { stores, sources: [stores.source] }, (d) => {
        visit = d.task('visit', (id: string) => void touched.push(id));
        done = d.task('done', () => void (finalized += 1));
      });
      try {
        const expectations: Array<[FirestoreQuerySpec['where'], number]> = [
          [[['createdAt', '<', new Date(base + 20_000)]], 20],
          [[['kind', '!=', 0]], 30],
          [[['kind', 'not-in', [1, 2]]], 20],
        ];
        for (const [where, count] of expectations) {
          touched.length = 0;
          finalized = 0;
          const info = await app.deferred.deferIteration<string>(firestoreQuery(path, { where, select: 'id' }), visit, done, { shards: 4 });
          await app.deferred.drain({ timeoutMs: 100_000 });
          await info.wait({ timeoutMs: 10_000 });
          assert.equal(touched.length, count, JSON.stringify(where));
          assert.equal(new Set(touched).size, count, 'each document once');
          assert.equal(finalized, 1);
        }
      } finally {
        await app.close();
      }
    });

    it(`deferIteration over ${big.toLocaleString('en')} documents with 5 shards touches each once and finalizes once`, async function () {
      const path = `${prefix}Big`;
      const all = ids(big, 'big');
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
        assert.equal(touched.size, big);
        assert.ok(
          [...touched.values()].every((count) => count === 1),
          'each document once',
        );
        assert.deepEqual(shards, new Set([0, 1, 2, 3, 4]));
        assert.equal(finalized, 1);
      } finally {
        await app.close();
      }
    });
  });
