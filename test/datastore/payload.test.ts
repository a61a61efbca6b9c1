/**
 * Chunked payloads on Datastore, where a commit outside a transaction may apply in part: a put
 * that fails half-way is never read back as a whole payload, and the previous one stays readable.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Datastore } from '@google-cloud/datastore';
import { datastoreStores, type DatastoreStores } from '../../adapters/datastore/index.js';
import { openDatastoreHarness, type DatastoreHarness } from './harness.js';

const MB = 1_000_000;

/** `datastore`, whose upsert() fails (before sending) from its `failFrom`-th call on. */
function failingUpserts(datastore: Datastore, failFrom: number): Datastore {
  let calls = 0;
  return new Proxy(datastore, {
    get(target, property, receiver) {
      if (property !== 'upsert') return Reflect.get(target, property, receiver);
      return (...args: Parameters<Datastore['upsert']>) => {
        calls += 1;
        if (calls >= failFrom) return Promise.reject(Object.assign(new Error('connection cut'), { code: 14 }));
        return target.upsert(...args);
      };
    },
  });
}

describe('Datastore payloads: a put cut off half-way', function () {
  this.timeout(120_000);
  let h: DatastoreHarness;
  let stores: DatastoreStores;
  before(async () => {
    h = await openDatastoreHarness();
    stores = h.stores;
  });
  after(async () => h.cleanup());

  const cutOff = (failFrom: number): DatastoreStores => datastoreStores({ datastore: failingUpserts(h.datastore, failFrom), namespace: stores.namespace });

  it('keeps the previous payload whole when the new one fails after some chunks, or just before its head', async () => {
    const before = randomBytes(2 * MB + 500_000);
    await stores.payloads.put('p-replaced', before, 60_000);
    const bigger = randomBytes(7 * MB);
    // The head holds the first MB; six chunk entities go in two commits of three, then the head.
    for (const failFrom of [2, 3]) {
      await assert.rejects(cutOff(failFrom).payloads.put('p-replaced', bigger, 60_000));
      const read = await stores.payloads.get('p-replaced');
      assert.ok(read && Buffer.from(read).equals(before), `the earlier payload, whole (cut at commit ${failFrom})`);
    }
    await stores.payloads.put('p-replaced', bigger, 60_000);
    assert.ok(Buffer.from((await stores.payloads.get('p-replaced'))!).equals(bigger));
  });

  it('a new payload cut off before its head is no payload, not a part of one', async () => {
    const data = randomBytes(3 * MB);
    await assert.rejects(cutOff(2).payloads.put('p-new', data, 60_000));
    assert.equal(await stores.payloads.get('p-new'), undefined);
  });

  it('a head whose chunks are missing (a partly applied commit) reads as no payload', async () => {
    const data = randomBytes(2 * MB + 1);
    await stores.payloads.put('p-partial', data, 60_000);
    const [chunks] = (await h.datastore.runQuery(
      h.datastore
        .createQuery(stores.namespace ?? '', stores.kinds.payloadChunk)
        .hasAncestor(h.datastore.key({ namespace: stores.namespace, path: [stores.kinds.payload, 'p-partial'] }))
        .select('__key__'),
    )) as [Array<Record<symbol, unknown>>, unknown];
    assert.equal(chunks.length, 2);
    await h.datastore.delete(chunks[1]![h.datastore.KEY] as Parameters<Datastore['delete']>[0]);
    assert.equal(await stores.payloads.get('p-partial'), undefined);
  });
});
