/** RunQuery through the official client: filters, composites, order, limit, offset, projections. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { and, or, PropertyFilter, type Datastore, type Query } from '@google-cloud/datastore';
import { assertRpcError, uniqueKind, useDatastore } from './test-support.js';

type Row = Record<string | symbol, unknown>;

describe('datastore emulator: queries', () => {
  const ctx = useDatastore();
  const people = uniqueKind('Person');

  before(async () => {
    const { datastore } = ctx();
    const person = (name: string, data: Record<string, unknown>, excludeFromIndexes: string[] = []) => ({
      key: datastore.key([people, name]),
      data,
      excludeFromIndexes,
    });
    await datastore.save([
      person('p1', { age: 30, first: 'ann', team: 'red', tags: ['a', 'b'] }),
      person('p2', { age: 25, first: 'bob', team: 'blue', tags: ['b'] }),
      person('p3', { age: 35, first: 'cid', team: 'red', tags: [] }),
      person('p4', { age: 25, first: 'dan', team: 'green', tags: ['c'], note: 'hidden' }, ['note']),
      person('p5', { first: 'eve', team: 'red' }),
    ]);
  });

  const names = (rows: Row[], datastore: Datastore): string[] => rows.map((row) => (row[datastore.KEY as unknown as string] as { name: string }).name);

  async function run(build: (query: Query) => Query): Promise<string[]> {
    const { datastore } = ctx();
    const [rows] = await datastore.runQuery(build(datastore.createQuery(people)));
    return names(rows as Row[], datastore);
  }

  it('returns the whole kind in key order when no order is given', async () => {
    assert.deepEqual(await run((q) => q), ['p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('filters with =, <, <=, >, >=', async () => {
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('team', '=', 'red'))), ['p1', 'p3', 'p5']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('age', '<', 30))), ['p2', 'p4']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('age', '<=', 30))), ['p2', 'p4', 'p1']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('age', '>', 25))), ['p1', 'p3']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('age', '>=', 30))), ['p1', 'p3']);
  });

  it('takes a bare property filter as well as the one-filter composite AND the client sends', async () => {
    const { raw, projectId, partitionId } = ctx();
    const team = { propertyFilter: { property: { name: 'team' }, op: 'EQUAL', value: { stringValue: 'blue' } } };
    const keyNames = async (filter: object) => {
      const [response] = await raw.runQuery({ projectId, partitionId, query: { kind: [{ name: people }], filter } });
      return response.batch!.entityResults!.map((result) => result.entity!.key!.path![0].name);
    };
    assert.deepEqual(await keyNames(team), ['p2']);
    assert.deepEqual(await keyNames({ compositeFilter: { op: 'AND', filters: [team] } }), ['p2']);
  });

  it('filters with !=, IN and NOT_IN, ordering by the inequality property first', async () => {
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('team', '!=', 'red'))), ['p2', 'p4']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('team', 'IN', ['green', 'blue']))), ['p2', 'p4']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('team', 'NOT_IN', ['red', 'green']))), ['p2']);
  });

  it('leaves out entities without the property, or with it unindexed', async () => {
    assert.deepEqual(await run((q) => q.order('age')), ['p2', 'p4', 'p1', 'p3'], 'p5 has no age');
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('note', '=', 'hidden'))), [], 'note is unindexed');
  });

  it('matches a multi-valued property when any value matches, and an empty list never', async () => {
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('tags', '=', 'b'))), ['p1', 'p2']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('tags', '>', 'a')).order('tags')), ['p1', 'p2', 'p4']);
  });

  it('filters on the properties of embedded entities by dotted name, unless the entity is unindexed', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Embedded');
    await datastore.save([
      { key: datastore.key([kind, 'a']), data: { address: { city: 'Oslo', zip: 1 } } },
      { key: datastore.key([kind, 'b']), data: { address: { city: 'Rome', zip: 2 } } },
      { key: datastore.key([kind, 'c']), data: { address: { city: 'Oslo', zip: 3 } }, excludeFromIndexes: ['address'] },
    ]);
    const [rows] = await datastore.runQuery(datastore.createQuery(kind).filter(new PropertyFilter('address.city', '=', 'Oslo')));
    assert.deepEqual(names(rows as Row[], datastore), ['a']);
  });

  it('combines filters with AND and OR', async () => {
    const both = and([new PropertyFilter('team', '=', 'red'), new PropertyFilter('age', '>=', 30)]);
    assert.deepEqual(await run((q) => q.filter(both)), ['p1', 'p3']);
    const either = or([new PropertyFilter('team', '=', 'blue'), new PropertyFilter('age', '>', 30)]);
    assert.deepEqual(await run((q) => q.filter(either)), ['p2', 'p3']);
  });

  it('orders ascending, descending and by several properties, ties broken by key in the direction of the last order', async () => {
    // Google's Datastore-mode emulator breaks ties of a descending order by key descending.
    assert.deepEqual(await run((q) => q.order('age', { descending: true })), ['p3', 'p1', 'p4', 'p2']);
    assert.deepEqual(await run((q) => q.order('age').order('first', { descending: true })), ['p4', 'p2', 'p1', 'p3']);
    assert.deepEqual(await run((q) => q.order('team').order('first')), ['p2', 'p4', 'p1', 'p3', 'p5']);
  });

  it('applies offset, then limit', async () => {
    assert.deepEqual(await run((q) => q.order('first').offset(1).limit(2)), ['p2', 'p3']);
    assert.deepEqual(await run((q) => q.order('first').offset(10)), []);
  });

  it('filters and orders on __key__', async () => {
    const { datastore } = ctx();
    const p2 = datastore.key([people, 'p2']);
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('__key__', '>', p2))), ['p3', 'p4', 'p5']);
    assert.deepEqual(await run((q) => q.order('__key__', { descending: true }).limit(2)), ['p5', 'p4']);
    const some = [datastore.key([people, 'p4']), datastore.key([people, 'p1'])];
    assert.deepEqual(await run((q) => q.filter(new PropertyFilter('__key__', 'IN', some))), ['p1', 'p4']);
  });

  it('returns keys only for a __key__ projection', async () => {
    const { datastore } = ctx();
    const [rows] = await datastore.runQuery(datastore.createQuery(people).select('__key__').limit(2));
    assert.equal(rows.length, 2);
    assert.deepEqual(Object.keys(rows[0]), [], 'no properties');
    assert.equal(rows[0][datastore.KEY].name, 'p1');
  });

  it('projects properties, one row per value of a projected list, and groups with distinct_on', async () => {
    const { datastore } = ctx();
    const [teams] = await datastore.runQuery(datastore.createQuery(people).select('team').order('team'));
    assert.deepEqual(
      teams.map((row) => row.team),
      ['blue', 'green', 'red', 'red', 'red'],
    );
    assert.deepEqual(Object.keys(teams[0]), ['team']);
    const [tags] = await datastore.runQuery(datastore.createQuery(people).select('tags').order('tags'));
    assert.deepEqual(
      tags.map((row) => row.tags),
      ['a', 'b', 'b', 'c'],
    );
    const [distinct] = await datastore.runQuery(datastore.createQuery(people).select('team').groupBy('team').order('team'));
    assert.deepEqual(
      distinct.map((row) => row.team),
      ['blue', 'green', 'red'],
    );
  });

  it('limits results to an ancestor and its descendants', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Folder');
    const home = datastore.key([kind, 'home']);
    const work = datastore.key([kind, 'work']);
    await datastore.save([
      { key: home, data: { n: 0 } },
      { key: datastore.key([kind, 'home', kind, 'docs']), data: { n: 1 } },
      { key: datastore.key([kind, 'home', kind, 'docs', kind, 'cv']), data: { n: 2 } },
      { key: work, data: { n: 3 } },
      { key: datastore.key([kind, 'work', kind, 'plans']), data: { n: 4 } },
    ]);
    const [rows] = await datastore.runQuery(datastore.createQuery(kind).hasAncestor(home));
    assert.deepEqual(
      rows.map((row) => row.n),
      [0, 1, 2],
    );
    const [kindless] = await datastore.runQuery(datastore.createQuery().hasAncestor(work));
    assert.deepEqual(
      kindless.map((row) => row.n),
      [3, 4],
      'a kindless ancestor query',
    );
  });

  it('keeps namespaces apart', async () => {
    const { datastore, namespace } = ctx();
    const kind = uniqueKind('Spaced');
    const [first, second] = [`${namespace ?? 'ns'}-first`, `${namespace ?? 'ns'}-second`];
    await datastore.save({ key: datastore.key({ namespace: first, path: [kind, 'x'] }), data: { where: 'first' } });
    await datastore.save({ key: datastore.key({ namespace: second, path: [kind, 'x'] }), data: { where: 'second' } });
    const [inFirst] = await datastore.runQuery(datastore.createQuery(first, kind));
    assert.deepEqual(
      inFirst.map((row) => row.where),
      ['first'],
    );
    assert.equal(inFirst[0][datastore.KEY].namespace, first);
    const [inDefault] = await datastore.runQuery(datastore.createQuery(kind));
    assert.deepEqual(inDefault, []);
    const [lookedUp] = await datastore.get(datastore.key({ namespace: second, path: [kind, 'x'] }));
    assert.equal(lookedUp.where, 'second');
  });

  it('orders values of mixed types as Datastore does', async function () {
    const { datastore, external } = ctx();
    if (external) this.skip(); // The order among types is documented loosely; only ours is pinned down.
    const kind = uniqueKind('Mixed');
    const values: Array<[string, unknown]> = [
      ['key', datastore.key(['Other', 'k'])],
      ['double', datastore.double(2.5)],
      ['string', 'text'],
      ['blob', Buffer.from('bytes')],
      ['boolean', true],
      ['timestamp', new Date(0)],
      ['integer', 7],
      ['null', null],
    ];
    await datastore.save(values.map(([name, v]) => ({ key: datastore.key([kind, name]), data: { v } })));
    const [rows] = await datastore.runQuery(datastore.createQuery(kind).order('v'));
    assert.deepEqual(names(rows as Row[], datastore), ['null', 'integer', 'timestamp', 'boolean', 'blob', 'string', 'double', 'key']);
    const [inequality] = await datastore.runQuery(datastore.createQuery(kind).filter(new PropertyFilter('v', '>', 0)));
    assert.deepEqual(names(inequality as Row[], datastore), ['integer'], 'range filters stay within one type');
  });

  it('counts, sums and averages with an aggregation query', async () => {
    const { datastore } = ctx();
    const aggregate = datastore
      .createAggregationQuery(datastore.createQuery(people).filter(new PropertyFilter('age', '>=', 25)))
      .count('total')
      .sum('age', 'ages')
      .average('age', 'mean');
    const [[result]] = await datastore.runAggregationQuery(aggregate);
    assert.deepEqual(Object.entries(result), [
      ['total', 4],
      ['ages', 115],
      ['mean', 28.75],
    ]);
  });

  it('answers UNIMPLEMENTED for GQL', async function () {
    const { raw, projectId, partitionId, external } = ctx();
    if (external) this.skip(); // Google's emulator runs GQL.
    await assertRpcError(
      raw.runQuery({ projectId, partitionId, gqlQuery: { queryString: 'SELECT * FROM Person', allowLiterals: true } }),
      status.UNIMPLEMENTED,
    );
  });

  it('refuses invalid queries: two NOT_EQUAL filters, an empty IN, a kindless property filter', async () => {
    const { raw, projectId, partitionId } = ctx();
    const filter = (property: string, op: string, value: object) => ({ propertyFilter: { property: { name: property }, op, value } });
    const runWith = (query: object) => raw.runQuery({ projectId, partitionId, query });
    await assertRpcError(
      runWith({
        kind: [{ name: people }],
        filter: { compositeFilter: { op: 'AND', filters: [filter('a', 'NOT_EQUAL', { integerValue: 1 }), filter('b', 'NOT_EQUAL', { integerValue: 1 })] } },
      }),
      status.INVALID_ARGUMENT,
    );
    await assertRpcError(runWith({ kind: [{ name: people }], filter: filter('team', 'IN', { arrayValue: { values: [] } }) }), status.INVALID_ARGUMENT);
    await assertRpcError(runWith({ filter: filter('team', 'EQUAL', { stringValue: 'red' }) }), status.INVALID_ARGUMENT);
  });
});
