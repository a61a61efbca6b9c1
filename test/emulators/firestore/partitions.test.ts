/** getPartitions (PartitionQuery) through the official client: partitions cover a collection group once, in order. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { FieldPath, type Firestore } from '@google-cloud/firestore';
import { rejectsWithCode } from './assertions.js';
import { databaseName, gapicClient, type GapicClient } from './gapic.js';
import { firestoreForTests, type FirestoreForTests } from './harness.js';

describe('firestore emulator: partition queries', () => {
  let harness: FirestoreForTests;
  let db: Firestore;
  let gapic: GapicClient;
  let group: string;
  let allPaths: string[];

  before(async () => {
    harness = await firestoreForTests();
    db = harness.firestore;
    gapic = gapicClient(harness);
    group = `${harness.prefix}items`;
    // 1000 documents of one collection group under 10 parents and at the top level.
    const writer = db.bulkWriter();
    for (let i = 0; i < 1000; i++) {
      const parent = i % 11 === 10 ? db : db.collection(`${harness.prefix}shelves`).doc(`shelf-${i % 11}`);
      void writer.set(parent.collection(group).doc(`item-${String(i).padStart(4, '0')}`), { i });
    }
    await writer.close();
    allPaths = (await db.collectionGroup(group).orderBy(FieldPath.documentId()).get()).docs.map((doc) => doc.ref.path);
    assert.equal(allPaths.length, 1000);
  });
  after(async () => {
    await gapic.close();
    await harness.clear();
    await harness.stop();
  });

  async function pathsByPartition(count: number): Promise<string[][]> {
    const partitions: string[][] = [];
    for await (const partition of db.collectionGroup(group).getPartitions(count)) {
      partitions.push((await partition.toQuery().get()).docs.map((doc) => doc.ref.path));
    }
    return partitions;
  }

  for (const count of [1, 2, 7, 32]) {
    it(`getPartitions(${count}) gives ${count} partitions covering every document exactly once, in order`, async () => {
      const partitions = await pathsByPartition(count);
      assert.equal(partitions.length, count);
      assert.deepEqual(partitions.flat(), allPaths);
      // Google's service samples its split points, so only ours promises an even split.
      if (count > 1 && !harness.external) {
        const sizes = partitions.map((p) => p.length);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even split: ${sizes.join(',')}`);
      }
    });
  }

  it('never returns more partitions than there are documents', async function () {
    if (harness.external) this.skip(); // Google's may return fewer split points
    const bounds: string[] = [];
    for await (const partition of db.collectionGroup(group).getPartitions(5000)) {
      const end = partition.endBefore?.[0] as { path: string } | undefined;
      if (end) bounds.push(end.path);
    }
    // 999 split points: every document but the first starts a partition of its own.
    assert.deepEqual(bounds, allPaths.slice(1));
  });

  it('pages its cursors when asked to', async function () {
    if (harness.external) this.skip(); // Google's may return fewer split points
    const database = databaseName(harness);
    const structuredQuery = {
      from: [{ collectionId: group, allDescendants: true }],
      orderBy: [{ field: { fieldPath: '__name__' }, direction: 'ASCENDING' as const }],
    };
    const parent = `${database}/documents`;
    const [firstPage, , firstResponse] = await gapic.partitionQuery({ parent, structuredQuery, partitionCount: 9, pageSize: 4 }, { autoPaginate: false });
    assert.equal(firstPage.length, 4);
    assert.ok(firstResponse?.nextPageToken);
    const pageToken = firstResponse.nextPageToken;
    const [rest] = await gapic.partitionQuery({ parent, structuredQuery, partitionCount: 9, pageSize: 10, pageToken });
    const positions = [...firstPage, ...rest].map((cursor) => {
      const name = cursor.values![0]!.referenceValue!;
      return allPaths.indexOf(name.slice(`${parent}/`.length));
    });
    assert.equal(positions.length, 9);
    assert.ok(
      positions.every((position, i) => position > (i === 0 ? 0 : positions[i - 1]!)),
      'ascending split points',
    );
  });

  it('refuses queries it cannot partition', async () => {
    const parent = `${databaseName(harness)}/documents`;
    const plainCollection = { from: [{ collectionId: group }], orderBy: [{ field: { fieldPath: '__name__' } }] };
    const notAGroup = gapic.partitionQuery({ parent, structuredQuery: plainCollection, partitionCount: 2 });
    await rejectsWithCode(notAGroup, status.INVALID_ARGUMENT);
    const filtered = {
      from: [{ collectionId: group, allDescendants: true }],
      where: { fieldFilter: { field: { fieldPath: 'i' }, op: 'EQUAL' as const, value: { integerValue: 1 } } },
      orderBy: [{ field: { fieldPath: '__name__' } }],
    };
    const withFilter = gapic.partitionQuery({ parent, structuredQuery: filtered, partitionCount: 2 });
    await rejectsWithCode(withFilter, status.INVALID_ARGUMENT);
  });
});
