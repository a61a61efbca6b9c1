/** Document reads and writes through the official client: get/set/update/delete, preconditions, transforms, limits. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { FieldPath, FieldValue, type Firestore, Timestamp } from '@google-cloud/firestore';
import { rejectsWithCode } from './assertions.js';
import { firestoreForTests, type FirestoreForTests } from './harness.js';

describe('firestore emulator: documents', () => {
  let harness: FirestoreForTests;
  let db: Firestore;
  const col = (id: string) => db.collection(`${harness.prefix}${id}`);

  before(async () => {
    harness = await firestoreForTests();
    db = harness.firestore;
  });
  after(async () => {
    await harness.clear();
    await harness.stop();
  });

  it('sets, gets, updates and deletes a document', async () => {
    const ref = col('docs').doc('a');
    const written = await ref.set({ name: 'first', count: 1, nested: { x: true } });
    const snapshot = await ref.get();
    assert.equal(snapshot.exists, true);
    assert.deepEqual(snapshot.data(), { name: 'first', count: 1, nested: { x: true } });
    assert.ok(snapshot.createTime!.isEqual(written.writeTime));
    assert.ok(snapshot.updateTime!.isEqual(written.writeTime));

    const updated = await ref.update({ count: 2, 'nested.y': 'added', name: FieldValue.delete() });
    const after = await ref.get();
    assert.deepEqual(after.data(), { count: 2, nested: { x: true, y: 'added' } });
    assert.ok(after.createTime!.isEqual(written.writeTime), 'create_time survives updates');
    assert.ok(updated.writeTime > written.writeTime, 'update_time moves forward');

    await ref.delete();
    const gone = await ref.get();
    assert.equal(gone.exists, false);
    assert.equal(gone.data(), undefined);
  });

  it('merges with set({ merge: true }) and replaces without it', async () => {
    const ref = col('docs').doc('merge');
    await ref.set({ a: 1, b: { c: 2, d: 3 } });
    await ref.set({ b: { c: 20 }, e: 5 }, { merge: true });
    assert.deepEqual((await ref.get()).data(), { a: 1, b: { c: 20, d: 3 }, e: 5 });
    await ref.set({ only: true });
    assert.deepEqual((await ref.get()).data(), { only: true });
  });

  it('handles field names that need backticks in field paths', async () => {
    const ref = col('docs').doc('paths');
    await ref.set({ 'a.b': 1, 'we-ird': { 'x`y': 2 }, plain: { nested: 3 } });
    await ref.update(new FieldPath('a.b'), 10, new FieldPath('we-ird', 'x`y'), 20, 'plain.nested', 30);
    await ref.set({ 'new key': true }, { merge: true });
    const expected = { 'a.b': 10, 'we-ird': { 'x`y': 20 }, plain: { nested: 30 }, 'new key': true };
    assert.deepEqual((await ref.get()).data(), expected);
    const found = await col('docs').where(new FieldPath('we-ird', 'x`y'), '==', 20).get();
    assert.deepEqual(
      found.docs.map((doc) => doc.id),
      ['paths'],
    );
  });

  it('round-trips every value type', async () => {
    const ref = col('docs').doc('types');
    const other = col('docs').doc('other');
    const data = {
      nothing: null,
      yes: true,
      integer: 9007199254740993n,
      double: 1.5,
      nan: NaN,
      when: new Timestamp(1_700_000_000, 123_456_000),
      text: 'héllo 👋',
      bytes: Buffer.from([0, 1, 255]),
      ref: other,
      array: [1, 'two', { three: 3 }],
      map: { deep: { deeper: ['x'] } },
    };
    await ref.set(data);
    const read = (await ref.get()).data()!;
    assert.equal(read.nothing, null);
    assert.equal(read.yes, true);
    assert.equal(read.double, 1.5);
    assert.ok(Number.isNaN(read.nan));
    assert.ok((read.when as Timestamp).isEqual(data.when));
    assert.equal(read.text, data.text);
    assert.deepEqual(Buffer.from(read.bytes as Uint8Array), data.bytes);
    assert.equal(read.ref.path, other.path);
    assert.deepEqual(read.array, [1, 'two', { three: 3 }]);
    assert.deepEqual(read.map, { deep: { deeper: ['x'] } });
    // The client turns int64 values into numbers unless useBigInt is set; the wire carries all 64 bits.
    assert.equal(read.integer, Number(data.integer));
  });

  it('create() on an existing document fails with ALREADY_EXISTS', async () => {
    const ref = col('docs').doc('created');
    await ref.create({ v: 1 });
    await rejectsWithCode(ref.create({ v: 2 }), status.ALREADY_EXISTS);
    assert.deepEqual((await ref.get()).data(), { v: 1 });
  });

  it('update() on a missing document fails with NOT_FOUND', async () => {
    await rejectsWithCode(col('docs').doc('missing').update({ v: 1 }), status.NOT_FOUND);
    assert.equal((await col('docs').doc('missing').get()).exists, false);
  });

  it('a stale lastUpdateTime precondition fails with FAILED_PRECONDITION; the current one passes', async () => {
    const ref = col('docs').doc('versioned');
    const first = await ref.set({ v: 1 });
    const second = await ref.update({ v: 2 });
    await rejectsWithCode(ref.update({ v: 3 }, { lastUpdateTime: first.writeTime }), status.FAILED_PRECONDITION);
    await rejectsWithCode(ref.delete({ lastUpdateTime: first.writeTime }), status.FAILED_PRECONDITION);
    assert.deepEqual((await ref.get()).data(), { v: 2 });
    await ref.update({ v: 3 }, { lastUpdateTime: second.writeTime });
    assert.deepEqual((await ref.get()).data(), { v: 3 });
  });

  it('delete({ exists: true }) of a missing document fails with NOT_FOUND; a plain delete is a no-op', async () => {
    const ref = col('docs').doc('never');
    await rejectsWithCode(ref.delete({ exists: true }), status.NOT_FOUND);
    await ref.delete();
  });

  it('a write that changes nothing keeps the update time', async () => {
    const ref = col('docs').doc('same');
    const first = await ref.set({ v: 1 });
    await ref.set({ v: 1 });
    assert.ok((await ref.get()).updateTime!.isEqual(first.writeTime));
  });

  it('applies increment, serverTimestamp and array transforms', async () => {
    const ref = col('docs').doc('transforms');
    await ref.set({ n: 1, d: 1.5, tags: ['a', 'b'] });
    const before = Date.now();
    await ref.update({
      n: FieldValue.increment(2),
      d: FieldValue.increment(1),
      fresh: FieldValue.increment(7),
      at: FieldValue.serverTimestamp(),
      tags: FieldValue.arrayUnion('b', 'c'),
    });
    let data = (await ref.get()).data()!;
    assert.equal(data.n, 3);
    assert.equal(data.d, 2.5);
    assert.equal(data.fresh, 7, 'increment of a missing field sets it');
    assert.deepEqual(data.tags, ['a', 'b', 'c']);
    const at = (data.at as Timestamp).toMillis();
    assert.ok(at >= before - 5 && at <= Date.now() + 5, 'server timestamp is the request time');

    await ref.update({ tags: FieldValue.arrayRemove('a', 'zzz') });
    data = (await ref.get()).data()!;
    assert.deepEqual(data.tags, ['b', 'c']);

    // set() with only transforms creates the document.
    const counter = col('docs').doc('counter');
    await counter.set({ hits: FieldValue.increment(1) }, { merge: true });
    await counter.set({ hits: FieldValue.increment(1) }, { merge: true });
    assert.equal((await counter.get()).get('hits'), 2);
  });

  it('gets several documents at once, found and missing', async () => {
    await col('many').doc('one').set({ i: 1 });
    await col('many').doc('two').set({ i: 2 });
    const many = col('many');
    const [one, missing, two] = await db.getAll(many.doc('one'), many.doc('nope'), many.doc('two'));
    assert.equal(one!.get('i'), 1);
    assert.equal(missing!.exists, false);
    assert.equal(two!.get('i'), 2);
    const [masked] = await db.getAll(col('many').doc('one'), { fieldMask: [] });
    assert.deepEqual(masked!.data(), {});
  });

  it('reads a document as it was at an earlier read time', async function () {
    const ref = col('docs').doc('history');
    const first = await ref.set({ v: 'old' });
    await ref.set({ v: 'new' });
    const snapshot = await db.runTransaction((tx) => tx.get(ref), { readOnly: true, readTime: first.writeTime });
    assert.equal(snapshot.get('v'), 'old');
  });

  it('rejects a document over 1 MiB with INVALID_ARGUMENT and accepts one just under', async () => {
    const ref = col('docs').doc('big');
    // Documented size: name ("docs" + 1, "big" + 1, + 16) + field name ("blob" + 1) + bytes + 32.
    const overhead = Buffer.byteLength(`${harness.prefix}docs`) + 1 + 4 + 16 + 5 + 32;
    const limit = 1_048_576;
    // Against Google's emulator only clear cases: its own count may differ by a few bytes.
    const slack = harness.external ? 1024 : 0;
    await ref.set({ blob: Buffer.alloc(limit - overhead - slack) });
    await rejectsWithCode(ref.set({ blob: Buffer.alloc(limit - overhead + 1 + slack) }), status.INVALID_ARGUMENT);
    await rejectsWithCode(ref.set({ blob: 'x'.repeat(limit) }), status.INVALID_ARGUMENT);
  });

  it('takes a commit larger than the default 4 MiB gRPC message limit', async () => {
    const batch = db.batch();
    for (let i = 0; i < 6; i++) batch.set(col('large').doc(`d${i}`), { blob: Buffer.alloc(900_000, i) });
    await batch.commit();
    assert.equal((await col('large').get()).size, 6);
  });

  it('rejects reserved and invalid document ids', async () => {
    await rejectsWithCode(col('docs').doc('__reserved__').set({}), status.INVALID_ARGUMENT);
    // No prefix here: the reserved pattern must match the whole id.
    await rejectsWithCode(db.collection('__bad__').doc('ok').set({}), status.INVALID_ARGUMENT);
    await rejectsWithCode(col('docs').doc('x'.repeat(1501)).set({}), status.INVALID_ARGUMENT);
    // Every id within 1,500 bytes, but the name over 6 KiB.
    const long = 'y'.repeat(1400);
    const deep = col(long).doc(long).collection(long).doc(long).collection(long).doc('z');
    await rejectsWithCode(deep.set({}), status.INVALID_ARGUMENT);
    assert.throws(() => col('docs').doc('a/b'), /./, 'ids with "/" are caught by the client already');
  });
});
