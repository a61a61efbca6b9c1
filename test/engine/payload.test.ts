/** Arguments travel intact: the codec end to end, and large payloads through the PayloadStore. */
import assert from 'node:assert/strict';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { memoryStores } from '../../adapters/memory/index.js';
import { createEmulatorClient } from '../../src/emulator/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

describe('task arguments end to end', () => {
  let app: TestApp;
  let client: CloudTasksClient;
  const stores = memoryStores();
  const received: unknown[][] = [];
  let failOnce = false;

  before(async () => {
    app = await startApp('express', { stores, queues: [{ name: 'held' }] }, (deferred) => {
      deferred.task('echo', (...args: unknown[]) => {
        received.push(args);
        if (failOnce) {
          failOnce = false;
          throw new Error('try again');
        }
      });
    });
    client = createEmulatorClient(app.deferred.emulator!);
  });
  after(async () => {
    await client.close();
    await app.close();
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('JSON plus Date, BigInt, Map, Set, Buffer, Uint8Array, undefined, -0, NaN, Infinity round-trip exactly', async () => {
    const args = [
      { when: new Date('2026-11-23T10:00:00.000Z'), big: 2n ** 70n, nested: { list: [1, 'two', null, undefined] } },
      new Map<unknown, unknown>([
        ['a', 1],
        [2, new Set(['x'])],
      ]),
      Buffer.from('buffer bytes'),
      new Uint8Array([1, 2, 3]),
      undefined,
      -0,
      NaN,
      Infinity,
      -Infinity,
      JSON.parse('{"__proto__": {"polluted": true}, "constructor": "plain"}') as unknown,
    ];
    const info = await app.deferred.defer('echo', args);
    await info.wait();
    const got = received[0]!;
    assert.deepStrictEqual(got.slice(0, 5), args.slice(0, 5));
    assert.ok(Buffer.isBuffer(got[2]));
    assert.ok(got[3] instanceof Uint8Array && !Buffer.isBuffer(got[3]));
    assert.ok(Object.is(got[5], -0));
    assert.ok(Number.isNaN(got[6]));
    assert.equal(got[7], Infinity);
    assert.equal(got[8], -Infinity);
    assert.deepStrictEqual(Object.keys(got[9] as object), ['__proto__', 'constructor']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
  });

  it('a 5 MiB argument goes through the PayloadStore, arrives intact, and is deleted after success', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 1) big[i] = (i * 31) % 251;
    const info = await app.deferred.defer('echo', [big]);
    const record = await app.deferred.getTask(info.id);
    assert.ok(record?.payloadRef, 'stored, not inline');
    assert.ok(record.payloadSize > 5 * 1024 * 1024);
    await info.wait({ timeoutMs: 20_000 });
    assert.ok(Buffer.compare(received[0]![0] as Buffer, big) === 0);
    assert.equal(await stores.payloads.get(info.id), undefined, 'payload deleted after success');
  });

  it('a stored payload is kept for a retry, then deleted', async () => {
    failOnce = true;
    const info = await app.deferred.defer('echo', ['x'.repeat(200 * 1024)]);
    await app.deferred.drain();
    const record = await info.wait();
    assert.equal(record.status, 'succeeded');
    assert.equal(received.length, 2, 'the retry found its payload');
    assert.equal(await stores.payloads.get(info.id), undefined);
  });

  it('a missing stored payload is a permanent failure (acknowledged, not retried)', async () => {
    await client.pauseQueue({ name: 'projects/local-project/locations/us-central1/queues/held' });
    const info = await app.deferred.defer('echo', ['y'.repeat(200 * 1024)], { queue: 'held' });
    await stores.payloads.delete(info.id);
    await client.resumeQueue({ name: 'projects/local-project/locations/us-central1/queues/held' });
    const record = await info.wait();
    assert.equal(record.status, 'failed');
    assert.equal(record.lastError?.code, 'PAYLOAD_MISSING');
    assert.equal(record.history[0]!.statusCode, 200);
    assert.equal(received.length, 0);
  });

  it('small payloads travel inline in the task body', async () => {
    const info = await app.deferred.defer('echo', ['small']);
    const record = await app.deferred.getTask(info.id);
    assert.equal(record?.payloadRef, undefined);
    await info.wait();
  });
});
