/** Structured queries through the official client: filters, order, limits, cursors, collection groups, aggregations. */
import * as assert from 'node:assert/strict';
import { AggregateField, FieldPath, Filter, type Firestore, GeoPoint, type Query, Timestamp } from '@google-cloud/firestore';
import { firestoreForTests, type FirestoreForTests } from './harness.js';

describe('firestore emulator: queries', () => {
  let harness: FirestoreForTests;
  let db: Firestore;
  const id = (name: string) => `${harness.prefix}${name}`;
  const cities = () => db.collection(id('cities'));
  const ids = async (query: Query) => (await query.get()).docs.map((doc) => doc.id);

  before(async () => {
    harness = await firestoreForTests();
    db = harness.firestore;
    const batch = db.batch();
    const rows: Record<string, object> = {
      sf: { name: 'San Francisco', state: 'CA', population: 860000, area: 121.4, capital: false, regions: ['w', 'n'] },
      la: { name: 'Los Angeles', state: 'CA', population: 3900000, area: 1302, capital: false, regions: ['w', 'so'] },
      dc: { name: 'Washington', state: null, population: 680000, area: 177, capital: true, regions: ['east_coast'] },
      tok: { name: 'Tokyo', state: null, population: 9000000, area: NaN, capital: true, regions: ['kanto', 'honshu'] },
      bj: { name: 'Beijing', population: 21500000, area: 16410.5, capital: true, regions: ['jingjinji', 'hebei'] },
      sac: { name: 'Sacramento', state: 'CA', population: 525000, area: 259, capital: true, regions: ['n'] },
    };
    for (const [docId, data] of Object.entries(rows)) batch.set(cities().doc(docId), data);
    await batch.commit();
  });
  after(async () => {
    await harness.clear();
    await harness.stop();
  });

  it('filters with ==, !=, <, <=, >, >=', async () => {
    assert.deepEqual(await ids(cities().where('state', '==', 'CA')), ['la', 'sac', 'sf']);
    // != needs the field to exist (bj has no state) and not be null (dc, tok), as on Firestore.
    assert.deepEqual(await ids(cities().where('state', '!=', 'CA')), []);
    assert.deepEqual(await ids(cities().where('population', '<', 680000)), ['sac']);
    assert.deepEqual(await ids(cities().where('population', '<=', 680000)), ['sac', 'dc']);
    assert.deepEqual(await ids(cities().where('population', '>', 9000000)), ['bj']);
    assert.deepEqual(await ids(cities().where('population', '>=', 9000000)), ['tok', 'bj']);
    // Range filters only match values of the same type.
    assert.deepEqual(await ids(cities().where('name', '>', 5)), []);
  });

  it('filters with array-contains, array-contains-any, in and not-in', async () => {
    assert.deepEqual(await ids(cities().where('regions', 'array-contains', 'w')), ['la', 'sf']);
    const anyOf = cities().where('regions', 'array-contains-any', ['n', 'kanto']);
    assert.deepEqual(await ids(anyOf), ['sac', 'sf', 'tok']);
    assert.deepEqual(await ids(cities().where('population', 'in', [860000, 525000, 1])), ['sac', 'sf']);
    // not-in excludes documents without the field and with null.
    assert.deepEqual(await ids(cities().where('state', 'not-in', ['NY'])), ['la', 'sac', 'sf']);
    const byId = cities().where(FieldPath.documentId(), 'in', [cities().doc('bj'), cities().doc('sf')]);
    assert.deepEqual(await ids(byId), ['bj', 'sf']);
  });

  it('filters on null and NaN (unary filters)', async () => {
    assert.deepEqual(await ids(cities().where('state', '==', null)), ['dc', 'tok']);
    assert.deepEqual(await ids(cities().where('state', '!=', null)), ['la', 'sac', 'sf']);
    assert.deepEqual(await ids(cities().where('area', '==', NaN)), ['tok']);
    assert.deepEqual(await ids(cities().where('area', '!=', NaN)), ['sf', 'dc', 'sac', 'la', 'bj']);
  });

  it('combines filters with AND and OR', async () => {
    assert.deepEqual(await ids(cities().where('state', '==', 'CA').where('capital', '==', true)), ['sac']);
    const either = Filter.or(Filter.where('capital', '==', false), Filter.where('population', '>', 10000000));
    // The inequality on population orders the results.
    assert.deepEqual(await ids(cities().where(either)), ['sf', 'la', 'bj']);
    const smallOrLarge = Filter.or(Filter.where('population', '<', 600000), Filter.where('area', '>', 1000));
    const nested = Filter.and(Filter.where('state', '==', 'CA'), smallOrLarge);
    // Two inequality fields: ordered by both, in field-path order (area, then population).
    assert.deepEqual(await ids(cities().where(nested)), ['sac', 'la']);
  });

  it('orders both ways, breaks ties by document name and skips documents without the field', async () => {
    assert.deepEqual(await ids(cities().orderBy('population')), ['sac', 'dc', 'sf', 'la', 'tok', 'bj']);
    assert.deepEqual(await ids(cities().orderBy('population', 'desc')), ['bj', 'tok', 'la', 'sf', 'dc', 'sac']);
    // Ties on `capital` are broken by __name__ in the direction of the last order.
    assert.deepEqual(await ids(cities().orderBy('capital')), ['la', 'sf', 'bj', 'dc', 'sac', 'tok']);
    assert.deepEqual(await ids(cities().orderBy('capital', 'desc')), ['tok', 'sac', 'dc', 'bj', 'sf', 'la']);
    // bj has no `state`: ordering by it filters bj out (null sorts first).
    assert.deepEqual(await ids(cities().orderBy('state')), ['dc', 'tok', 'la', 'sac', 'sf']);
    // Without explicit order, the inequality field orders the results, then __name__.
    assert.deepEqual(await ids(cities().where('area', '>', 200)), ['sac', 'la', 'bj']);
    // With one, the explicit order comes first and the inequality field after it, in the same direction.
    assert.deepEqual(await ids(cities().where('area', '>', 200).orderBy('capital', 'desc')), ['bj', 'sac', 'la']);
  });

  it('limits, offsets and limitToLast', async () => {
    const byPopulation = cities().orderBy('population');
    assert.deepEqual(await ids(byPopulation.limit(2)), ['sac', 'dc']);
    assert.deepEqual(await ids(byPopulation.offset(2).limit(2)), ['sf', 'la']);
    assert.deepEqual(await ids(byPopulation.offset(5)), ['bj']);
    assert.deepEqual(await ids(byPopulation.limitToLast(2)), ['tok', 'bj']);
  });

  it('honours startAt, startAfter, endAt and endBefore, with values and with snapshots', async () => {
    const byPopulation = cities().orderBy('population');
    assert.deepEqual(await ids(byPopulation.startAt(860000)), ['sf', 'la', 'tok', 'bj']);
    assert.deepEqual(await ids(byPopulation.startAfter(860000)), ['la', 'tok', 'bj']);
    assert.deepEqual(await ids(byPopulation.endAt(860000)), ['sac', 'dc', 'sf']);
    assert.deepEqual(await ids(byPopulation.endBefore(860000)), ['sac', 'dc']);
    assert.deepEqual(await ids(byPopulation.startAfter(680000).endBefore(9000000)), ['sf', 'la']);
    // Cursors follow the direction of the order.
    const descending = cities().orderBy('population', 'desc');
    assert.deepEqual(await ids(descending.startAfter(860000)), ['dc', 'sac']);
    assert.deepEqual(await ids(descending.startAt(9000000).endAt(860000)), ['tok', 'la', 'sf']);

    // startAfter on a value shared by several documents skips all of them.
    const byCapital = cities().orderBy('capital');
    assert.deepEqual(await ids(byCapital.startAfter(false)), ['bj', 'dc', 'sac', 'tok']);
    assert.deepEqual(await ids(byCapital.startAt(true)), ['bj', 'dc', 'sac', 'tok']);
    assert.deepEqual(await ids(byCapital.endBefore(true)), ['la', 'sf']);

    // A snapshot cursor adds __name__, so paging over ties neither repeats nor skips.
    const firstPage = await byCapital.limit(3).get();
    assert.deepEqual(
      firstPage.docs.map((d) => d.id),
      ['la', 'sf', 'bj'],
    );
    const last = firstPage.docs[firstPage.docs.length - 1]!;
    assert.deepEqual(await ids(byCapital.startAfter(last).limit(3)), ['dc', 'sac', 'tok']);
    assert.deepEqual(await ids(byCapital.startAt(last).limit(2)), ['bj', 'dc']);
    assert.deepEqual(await ids(byCapital.endBefore(last)), ['la', 'sf']);
    assert.deepEqual(await ids(byCapital.endAt(last)), ['la', 'sf', 'bj']);

    // Cursors on the document name alone.
    const byName = cities().orderBy(FieldPath.documentId());
    assert.deepEqual(await ids(byName.startAfter('la')), ['sac', 'sf', 'tok']);
    assert.deepEqual(await ids(byName.startAt('la').endBefore('sf')), ['la', 'sac']);
  });

  it('projects fields with select()', async () => {
    const snapshot = await cities().where('state', '==', 'CA').select('name').get();
    const names = snapshot.docs.map((doc) => doc.data());
    assert.deepEqual(names, [{ name: 'Los Angeles' }, { name: 'Sacramento' }, { name: 'San Francisco' }]);
    const namesOnly = await cities().select().limit(1).get();
    assert.deepEqual(namesOnly.docs[0]!.data(), {});
  });

  it('queries a collection group across parents, and a subcollection alone', async () => {
    await cities().doc('sf').collection(id('landmarks')).doc('bridge').set({ type: 'bridge' });
    await cities().doc('sf').collection(id('landmarks')).doc('museum').set({ type: 'museum' });
    await cities().doc('tok').collection(id('landmarks')).doc('tower').set({ type: 'tower' });
    await db.collection(id('landmarks')).doc('top-level').set({ type: 'museum' });
    await db.collection(id('other')).doc('x').collection(id('landmarks')).doc('deep').set({ type: 'museum' });

    // Names order segment by segment: cities/... < landmarks/... < other/...
    const group = db.collectionGroup(id('landmarks'));
    const byType = group.orderBy('type').orderBy(FieldPath.documentId());
    assert.deepEqual(await ids(byType), ['bridge', 'museum', 'top-level', 'deep', 'tower']);
    const museums = await group.where('type', '==', 'museum').get();
    assert.deepEqual(museums.docs.map((doc) => doc.ref.path).sort(), [
      `${id('cities')}/sf/${id('landmarks')}/museum`,
      `${id('landmarks')}/top-level`,
      `${id('other')}/x/${id('landmarks')}/deep`,
    ]);
    assert.deepEqual(await ids(cities().doc('sf').collection(id('landmarks'))), ['bridge', 'museum']);
    // A plain collection query does not descend into subcollections.
    assert.equal((await cities().get()).size, 6);
  });

  it('sorts mixed types in Firestore order', async () => {
    const mixed = db.collection(id('mixed'));
    const values: Record<string, unknown> = {
      a_null: null,
      b_false: false,
      c_true: true,
      d_nan: NaN,
      e_neg: -1,
      f_int: 2,
      g_double: 2.5,
      h_time: new Timestamp(0, 0),
      i_string: 'abc',
      j_emoji: '\u{1F600}',
      k_bytes: Buffer.from([1]),
      l_ref: mixed.doc('target'),
      m_geo: new GeoPoint(1, 2),
      n_array: [1],
      o_map: { a: 1 },
    };
    const shuffled = Object.keys(values).reverse();
    for (const key of shuffled) await mixed.doc(key).set({ v: values[key] });
    assert.deepEqual(await ids(mixed.orderBy('v')), Object.keys(values));
    assert.deepEqual(await ids(mixed.where('v', '>=', 2).where('v', '<', 3)), ['f_int', 'g_double']);
    assert.deepEqual(await ids(mixed.where('v', '==', 2.0)), ['f_int'], '2 == 2.0');
  });

  it('counts, sums and averages', async () => {
    const count = await cities().where('state', '==', 'CA').count().get();
    assert.equal(count.data().count, 3);
    const aggregates = await cities()
      .where('capital', '==', true)
      .aggregate({
        people: AggregateField.sum('population'),
        mean: AggregateField.average('population'),
        n: AggregateField.count(),
      })
      .get();
    assert.deepEqual(aggregates.data(), { people: 31705000, mean: 31705000 / 4, n: 4 });
    assert.equal((await cities().limit(2).count().get()).data().count, 2);
  });
});
