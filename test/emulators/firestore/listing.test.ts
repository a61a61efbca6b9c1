/** BatchWrite (BulkWriter), ListDocuments and ListCollectionIds through the official client. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { Firestore } from '@google-cloud/firestore';
import { databaseName, gapicClient, type GapicClient } from './gapic.js';
import { firestoreForTests, type FirestoreForTests } from './harness.js';

describe('firestore emulator: batch writes and listings', () => {
  let harness: FirestoreForTests;
  let db: Firestore;
  let gapic: GapicClient;
  const col = (name: string) => db.collection(`${harness.prefix}${name}`);

  before(async () => {
    harness = await firestoreForTests();
    db = harness.firestore;
    gapic = gapicClient(harness);
  });
  after(async () => {
    await gapic.close();
    await harness.clear();
    await harness.stop();
  });

  it('BatchWrite applies each write on its own and reports a status per write', async () => {
    await col('bulk').doc('taken').set({ v: 0 });
    const failures: number[] = [];
    const writer = db.bulkWriter();
    writer.onWriteError((error) => {
      failures.push(error.code);
      return false; // no retries: the status is what this test looks at
    });
    const settled = Promise.allSettled([
      writer.create(col('bulk').doc('fresh'), { v: 1 }),
      writer.create(col('bulk').doc('taken'), { v: 2 }),
      writer.update(col('bulk').doc('absent'), { v: 3 }),
      writer.set(col('bulk').doc('other'), { v: 4 }),
    ]);
    await writer.close(); // sends the batch
    const results = await settled;
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(failures.sort(), [status.NOT_FOUND, status.ALREADY_EXISTS].sort());
    assert.equal((await col('bulk').doc('fresh').get()).get('v'), 1);
    assert.equal((await col('bulk').doc('taken').get()).get('v'), 0);
    assert.equal((await col('bulk').doc('other').get()).get('v'), 4);

    const database = databaseName(harness);
    const name = (id: string) => `${database}/documents/${harness.prefix}bulk/${id}`;
    const [response] = await gapic.batchWrite({
      database,
      writes: [{ update: { name: name('w1'), fields: {} } }, { update: { name: name('taken'), fields: {} }, currentDocument: { exists: false } }],
    });
    assert.deepEqual(
      response.status!.map((s) => s.code ?? 0),
      [status.OK, status.ALREADY_EXISTS],
    );
    assert.ok(response.writeResults![0]!.updateTime);
  });

  it('lists documents, including missing ones that only have subcollections', async () => {
    const shelf = col('shelf');
    await shelf.doc('a').set({ n: 1 });
    await shelf.doc('b').set({ n: 2 });
    await shelf.doc('ghost').collection('inside').doc('x').set({ n: 3 });
    const refs = await shelf.listDocuments();
    assert.deepEqual(refs.map((ref) => ref.id).sort(), ['a', 'b', 'ghost']);
    assert.equal((await shelf.get()).size, 2, 'a query does not see the missing document');
  });

  it('pages ListDocuments', async () => {
    const pages = col('pages');
    await Promise.all(['d1', 'd2', 'd3', 'd4', 'd5'].map((id) => pages.doc(id).set({ id })));
    const parent = `${databaseName(harness)}/documents`;
    const seen: string[] = [];
    let pageToken: string | undefined;
    let calls = 0;
    do {
      const [documents, , response] = await gapic.listDocuments({ parent, collectionId: pages.id, pageSize: 2, pageToken }, { autoPaginate: false });
      seen.push(...documents.map((doc) => doc.name!.split('/').pop()!));
      pageToken = response?.nextPageToken || undefined;
      calls++;
    } while (pageToken);
    assert.deepEqual(seen, ['d1', 'd2', 'd3', 'd4', 'd5']);
    assert.equal(calls, 3);
  });

  it('lists collection ids at the root and under a document', async () => {
    await col('roots').doc('r').collection('kids').doc('k').set({});
    await col('roots').doc('r').collection('pets').doc('p').set({});
    const below = await col('roots').doc('r').listCollections();
    assert.deepEqual(
      below.map((c) => c.id),
      ['kids', 'pets'],
    );
    const top = (await db.listCollections()).map((c) => c.id);
    assert.ok(top.includes(col('roots').id));
  });
});
