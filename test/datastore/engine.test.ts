/**
 * The engine on Datastore stores, end to end: status API, the outbox sweeper after cut enqueues,
 * and the authenticated sweep path that removes expired entities.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { DEFAULT_SWEEP_PATH } from '../../src/index.js';
import { startApp, eventually, type TestApp } from '../helpers/app.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { startWatchedApp, type WatchedApp } from './app.js';
import { datastoreBackends, openDatastoreHarness, type DatastoreHarness } from './harness.js';

const HOUR = 3_600_000;

for (const { label, backend } of datastoreBackends()) {
  describe(`engine on Datastore stores${label}`, function () {
    this.timeout(60_000);
    let h: DatastoreHarness;
    let app: TestApp;
    let recorder: Recorder;
    let runs = 0;

    before(async () => {
      h = await openDatastoreHarness({}, backend);
      recorder = await startRecorder();
      app = await startApp('express', { stores: h.stores }, (d) => {
        d.task('count', () => {
          runs += 1;
        });
      });
    });
    after(async () => {
      await app?.close();
      await recorder?.close();
      await h?.cleanup();
    });

    it('runs a task and records it in Datastore; getTask, findTask, listTasks and wait see it', async () => {
      const info = await app.deferred.defer('count', [], { reference: 'order-1' });
      assert.equal((await info.wait({ timeoutMs: 10_000 })).status, 'succeeded');
      assert.equal(runs, 1);
      assert.equal((await h.raw.rawTask(info.id))?.status, 'succeeded', 'the entity says succeeded');
      assert.equal((await app.deferred.findTask({ reference: 'order-1' }))?.id, info.id);
      const page = await app.deferred.listTasks({ status: 'succeeded', queue: 'default', taskName: 'count' });
      assert.deepEqual(
        page.records.map((r) => r.id),
        [info.id],
      );
    });

    describe(`the sweep path (${DEFAULT_SWEEP_PATH})`, () => {
      /** A real emulator-signed token for the handler's audience, taken from a delivery to the recorder. */
      async function realToken(): Promise<string> {
        const before = recorder.requests.length;
        await app.deferred.defer('count', [], { url: recorder.url, audience: app.handlerUrl });
        const delivery = await eventually(() => recorder.requests[before], 'the captured delivery');
        return String(delivery.headers.authorization);
      }

      async function expiredEntities(): Promise<string[]> {
        const past = Date.now() - HOUR;
        const ids: string[] = [];
        for (let i = 0; i < 3; i += 1) {
          const id = `expired-${i}-${Date.now()}`;
          await h.stores.state.createTask(
            {
              id,
              taskName: 'count',
              queue: 'default',
              status: 'succeeded',
              createdAt: past,
              updatedAt: past,
              eta: past,
              attempts: 1,
              executionCount: 1,
              payloadSize: 0,
              history: [],
              version: 1,
              expiresAt: past + 1,
              reference: `gone-${id}`,
            },
            past,
          );
          ids.push(id);
        }
        await h.stores.payloads.put(`payload-${ids[0]}`, Buffer.alloc(10), 1);
        return ids;
      }

      it('refuses a request without a token (401) and removes nothing', async () => {
        const ids = await expiredEntities();
        const res = await request(app.server).post(DEFAULT_SWEEP_PATH);
        assert.equal(res.status, 401);
        const kept = await h.raw.entities(h.stores.kinds.task);
        assert.ok(
          ids.every((id) => kept.some((e) => e.key.name === id)),
          'the expired records are still stored',
        );
      });

      it('with a valid token, removes expired records, their references and payloads', async () => {
        const ids = await expiredEntities();
        const res = await request(app.server)
          .post(DEFAULT_SWEEP_PATH)
          .set('Authorization', await realToken());
        assert.equal(res.status, 200);
        assert.ok(res.body.expired >= ids.length + 1, `expired: ${JSON.stringify(res.body)}`);
        const left = new Set((await h.raw.entities(h.stores.kinds.task)).map((e) => e.key.name));
        assert.ok(
          ids.every((id) => !left.has(id)),
          'expired records deleted',
        );
        for (const id of ids) assert.equal(await h.raw.rawReference(`gone-${id}`), undefined, 'their references deleted');
        assert.deepEqual(
          (await h.raw.entities(h.stores.kinds.payload)).filter((e) => e.key.name === `payload-${ids[0]}`),
          [],
        );
        assert.ok(left.size > 0, 'live records are kept');
      });
    });
  });

  describe(`outbox sweeper on Datastore (enqueue cut after commit)${label}`, function () {
    this.timeout(60_000);
    let h: DatastoreHarness;
    let app: WatchedApp;
    const runsById = new Map<number, number>();

    before(async () => {
      h = await openDatastoreHarness({}, backend);
      app = await startWatchedApp(h.stores, (d) =>
        d.task('once', (n: number) => {
          runsById.set(n, (runsById.get(n) ?? 0) + 1);
        }),
      );
    });
    after(async () => {
      await app?.close();
      await h?.cleanup();
    });

    it('100 commits whose enqueue was cut: the sweeper delivers each task exactly once', async () => {
      const ids: string[] = [];
      for (let n = 0; n < 100; n += 1) {
        const tx = h.datastore.transaction();
        await tx.run();
        tx.save({ key: h.datastore.key({ namespace: h.stores.namespace, path: ['Order', `o-${n}`] }), data: { n } });
        ids.push((await app.deferred.defer('once', [n], { transaction: tx })).id);
        app.transport.cutNext = 1;
        await tx.commit();
      }
      assert.equal(runsById.size, 0, 'nothing ran: every enqueue was cut');
      for (const id of ids) assert.ok(await h.raw.rawOutbox(id), 'each commit left its outbox entity');
      // Two sweepers racing (two instances behind Cloud Scheduler) still make one task each.
      await Promise.all([app.deferred.sweepOutbox({ graceMs: 0 }), app.deferred.sweepOutbox({ graceMs: 0 })]);
      await app.deferred.drain({ timeoutMs: 50_000 });
      for (const id of ids) assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
      assert.equal(runsById.size, 100);
      assert.ok(
        [...runsById.values()].every((n) => n === 1),
        'each ran exactly once',
      );
      assert.deepEqual(await app.deferred.sweepOutbox({ graceMs: 0 }), { enqueued: 0 }, 'the outbox is empty');
    });
  });
}
