/**
 * The engine on Firestore stores, end to end (embedded Cloud Tasks emulator -> Express): status
 * API, large payloads, transactional defer inside firestore.runTransaction (also when contention
 * makes the client run the function again), and the outbox sweeper after a cut enqueue.
 */
import assert from 'node:assert/strict';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { firestoreStores, type FirestoreStores } from '../../adapters/firestore/index.js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { firestoreForTests, type FirestoreForTests } from '../emulators/firestore/harness.js';
import { uniquePrefix } from './harness.js';
import { cuttingTransport } from '../helpers/transport.js';

const HELD = 'projects/local-project/locations/us-central1/queues/held';

describe('engine on Firestore stores', function () {
  let env: FirestoreForTests;
  let stores: FirestoreStores;
  let app: TestApp;
  let tasks: CloudTasksClient;
  const runs: unknown[][] = [];

  before(async function () {
    env = await firestoreForTests();
    stores = firestoreStores({ firestore: env.firestore, collectionPrefix: uniquePrefix(env) });
    app = await startApp('express', { stores, queues: [{ name: 'held' }] }, (d) => {
      d.task('count', (...args: unknown[]) => void runs.push(args));
    });
    tasks = createEmulatorClient(app.deferred.emulator!);
  });
  after(async function () {
    await tasks?.close();
    await app?.close();
    if (env?.external) await env.clear();
    await env?.stop();
  });
  beforeEach(() => {
    runs.length = 0;
  });

  const held = async (): Promise<string[]> => (await tasks.listTasks({ parent: HELD }))[0].map((task) => task.name!);

  it('runs a task and records it in Firestore; getTask, findTask, listTasks and wait see it', async function () {
    const info = await app.deferred.defer('count', [1], { reference: 'order-1' });
    const record = await info.wait({ timeoutMs: 10_000 });
    assert.equal(record.status, 'succeeded');
    assert.deepEqual(runs, [[1]]);
    assert.equal((await app.deferred.findTask({ reference: 'order-1' }))?.id, info.id);
    const page = await app.deferred.listTasks({ status: 'succeeded', taskName: 'count' });
    assert.ok(page.records.some((r) => r.id === info.id));
    assert.ok((await env.firestore.collection(stores.collections.tasks).doc(info.id).get()).exists, 'the document in Firestore');
  });

  it('a 3 MB argument travels chunked through the payload store and is deleted after the run', async function () {
    const big = 'x'.repeat(3_000_000);
    const info = await app.deferred.defer('count', [big]);
    assert.equal((await info.wait({ timeoutMs: 10_000 })).status, 'succeeded');
    assert.equal((runs[0]![0] as string).length, big.length);
    assert.equal(await stores.payloads.get(info.id), undefined);
  });

  it('transactional defer: nothing before the commit, enqueued once after it; a failed transaction enqueues nothing', async function () {
    await tasks.pauseQueue({ name: HELD });
    const order = env.firestore.collection(`${stores.collections.tasks}Orders`).doc('o1');
    let id = '';
    await env.firestore.runTransaction(async (tx) => {
      await tx.get(order);
      id = (await app.deferred.defer('count', ['tx'], { transaction: tx, queue: 'held' })).id;
      assert.equal(await app.deferred.getTask(id), undefined, 'nothing before the commit');
      tx.set(order, { paid: true });
    });
    assert.equal((await app.deferred.getTask(id))?.status, 'queued');
    assert.equal((await held()).length, 1, 'enqueued once');

    await assert.rejects(
      env.firestore.runTransaction(async (tx) => {
        id = (await app.deferred.defer('count', ['rolled back'], { transaction: tx, queue: 'held' })).id;
        throw new Error('payment declined');
      }),
      /payment declined/,
    );
    assert.equal(await app.deferred.getTask(id), undefined);
    assert.equal((await held()).length, 1, 'still one task');
    await tasks.resumeQueue({ name: HELD });
    await app.deferred.drain({ timeoutMs: 20_000 });
    assert.deepEqual(runs, [['tx']]);
  });

  it('contention makes the client run the function again: one task enqueued, run once, from the attempt that committed', async function () {
    await tasks.pauseQueue({ name: HELD });
    const x = env.firestore.collection(`${stores.collections.tasks}Stock`).doc('x');
    const y = env.firestore.collection(`${stores.collections.tasks}Stock`).doc('y');
    let aHasX!: () => void;
    let bHasY!: () => void;
    const aHoldsX = new Promise<void>((resolve) => (aHasX = resolve));
    const bHoldsY = new Promise<void>((resolve) => (bHasY = resolve));
    const ids: string[] = [];
    const a = env.firestore.runTransaction(async (tx) => {
      await tx.get(x);
      aHasX();
      await bHoldsY;
      await tx.get(y);
      tx.set(x, { by: 'a' });
    });
    const b = env.firestore.runTransaction(async (tx) => {
      const first = ids.length === 0;
      if (first) await aHoldsX;
      await tx.get(y);
      ids.push((await app.deferred.defer('count', [`attempt ${ids.length + 1}`], { transaction: tx, queue: 'held' })).id);
      if (first) bHasY();
      await tx.get(x); // deadlock on the first attempt: the younger transaction (this one) is aborted and run again
      tx.set(y, { by: 'b' });
    });
    await Promise.all([a, b]);
    assert.ok(ids.length >= 2, `the function ran ${ids.length} time(s)`);
    assert.equal((await held()).length, 1, 'one task enqueued');
    for (const id of ids.slice(0, -1)) assert.equal(await app.deferred.getTask(id), undefined, 'no record from an attempt that did not commit');
    await tasks.resumeQueue({ name: HELD });
    await app.deferred.drain({ timeoutMs: 20_000 });
    assert.deepEqual(runs, [[`attempt ${ids.length}`]]);
    assert.equal((await app.deferred.getTask(ids[ids.length - 1]!))?.status, 'succeeded');
  });

  it('cancel: a cancelled task is acknowledged without running', async function () {
    await tasks.pauseQueue({ name: HELD });
    const info = await app.deferred.defer('count', ['cancelled'], { queue: 'held' });
    assert.equal((await app.deferred.cancel(info.id))?.status, 'cancelled');
    await tasks.resumeQueue({ name: HELD });
    await app.deferred.drain({ timeoutMs: 20_000 });
    assert.deepEqual(runs, []);
  });
});

describe('outbox sweeper on Firestore (enqueue cut after the commit)', function () {
  let env: FirestoreForTests;
  let emulator: EmulatorHandle;
  let transport: ReturnType<typeof cuttingTransport>;
  let app: TestApp;
  const runsByN = new Map<number, number>();

  before(async function () {
    env = await firestoreForTests();
    emulator = await startEmulator({ port: 0 });
    transport = cuttingTransport(new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }));
    const serviceAccountEmail = 'tasks@local-project.iam.gserviceaccount.com';
    app = await startApp(
      'express',
      {
        stores: firestoreStores({ firestore: env.firestore, collectionPrefix: uniquePrefix(env) }),
        transport,
        queues: [{ name: 'default' }],
        auth: { mode: 'oidc', serviceAccountEmail, jwks: emulator.jwks as never },
        target: { serviceAccountEmail },
      },
      (d) => d.task('once', (n: number) => void runsByN.set(n, (runsByN.get(n) ?? 0) + 1)),
    );
  });
  after(async function () {
    await app?.close();
    await transport?.close();
    await emulator?.stop();
    if (env?.external) await env.clear();
    await env?.stop();
  });

  it('100 commits whose enqueue was cut: the sweeper delivers each task exactly once', async function () {
    const ids: string[] = [];
    for (let n = 0; n < 100; n += 1) {
      transport.cutNext = 1;
      await env.firestore.runTransaction(async (tx) => {
        ids.push((await app.deferred.defer('once', [n], { transaction: tx })).id);
      });
    }
    assert.equal(transport.cutNext, 0, 'every enqueue after a commit was attempted, and cut');
    await app.deferred.drain({ timeoutMs: 10_000 });
    assert.equal(runsByN.size, 0, 'nothing ran: every enqueue was cut');
    // Two sweepers racing (two instances behind Cloud Scheduler) still make one task each.
    await Promise.all([app.deferred.sweepOutbox({ graceMs: 0 }), app.deferred.sweepOutbox({ graceMs: 0 })]);
    await app.deferred.drain({ timeoutMs: 60_000 });
    for (const id of ids) assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
    assert.equal(runsByN.size, 100);
    assert.ok(
      [...runsByN.values()].every((count) => count === 1),
      'each ran exactly once',
    );
    assert.deepEqual(await app.deferred.sweepOutbox({ graceMs: 0 }), { enqueued: 0 }, 'the outbox is empty');
  });
});
