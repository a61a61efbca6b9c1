/** Production limits the emulator enforces: entity, value and key sizes, reserved names. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { assertRpcError, uniqueKind, useDatastore } from './test-support.js';

const KIB = 1024;

describe('datastore emulator: limits', () => {
  const ctx = useDatastore();

  it('accepts an entity under 1,048,572 bytes and refuses one over it', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Big');
    const half = (bytes: number) => Buffer.alloc(bytes, 7);
    const fits = { key: datastore.key([kind, 'fits']), data: { a: half(500 * KIB) }, excludeFromIndexes: ['a'] };
    await datastore.save(fits);
    const [read] = await datastore.get(fits.key);
    assert.equal(read.a.length, 500 * KIB);
    const tooBig = {
      key: datastore.key([kind, 'too-big']),
      data: { a: half(600 * KIB), b: half(600 * KIB) },
      excludeFromIndexes: ['a', 'b'],
    };
    await assertRpcError(datastore.save(tooBig), status.INVALID_ARGUMENT);
    assert.equal((await datastore.get(tooBig.key))[0], undefined);
  });

  it('counts entity size as Google documents it, to the byte', async function () {
    const { datastore, external } = ctx();
    if (external) this.skip(); // Other implementations may count a few bytes differently.
    const kind = 'Exact'; // key size 16 + ("Exact" 6) + ("x" 2) = 24; entity adds 32; "a" and "b" 2 each.
    const overhead = 24 + 32 + 2 + 2;
    const each = (1_048_572 - overhead) / 2;
    const entity = (name: string, extra: number) => ({
      key: datastore.key([kind, name]),
      data: { a: Buffer.alloc(each), b: Buffer.alloc(each + extra) },
      excludeFromIndexes: ['a', 'b'],
    });
    await datastore.save(entity('x', 0));
    await assertRpcError(datastore.save(entity('y', 1)), status.INVALID_ARGUMENT, 'too big');
  });

  it('refuses an indexed string over 1500 bytes unless it is excluded from indexes', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('Long');
    const text = 'x'.repeat(1501);
    await assertRpcError(datastore.save({ key: datastore.key([kind, 'i']), data: { text } }), status.INVALID_ARGUMENT, '1500');
    await datastore.save({ key: datastore.key([kind, 'u']), data: { text }, excludeFromIndexes: ['text'] });
    await datastore.save({ key: datastore.key([kind, 'ok']), data: { text: 'x'.repeat(1500) } });
  });

  it('lets an embedded entity excluded from indexes hold long strings', async () => {
    const { datastore } = ctx();
    const key = datastore.key([uniqueKind('LongInside'), 'e']);
    await datastore.save({ key, data: { doc: { body: 'y'.repeat(5000) } }, excludeFromIndexes: ['doc'] });
    const [read] = await datastore.get(key);
    assert.equal(read.doc.body.length, 5000);
  });

  it('refuses a key over 6 KiB', async () => {
    const { datastore } = ctx();
    const kind = uniqueKind('LongKey');
    const path = Array.from({ length: 5 }, (_, i) => [kind, `${i}${'k'.repeat(1400)}`]).flat();
    await assertRpcError(datastore.save({ key: datastore.key(path), data: { n: 1 } }), status.INVALID_ARGUMENT);
  });

  it('refuses reserved kinds and property names', async () => {
    const { datastore } = ctx();
    await assertRpcError(datastore.save({ key: datastore.key(['__Reserved__', 'r']), data: { n: 1 } }), status.INVALID_ARGUMENT);
    await assertRpcError(datastore.save({ key: datastore.key([uniqueKind('Props'), 'p']), data: { __secret__: 1 } }), status.INVALID_ARGUMENT);
  });
});
