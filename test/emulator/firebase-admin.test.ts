/**
 * firebase-admin 13, unchanged, against CLOUD_TASKS_EMULATOR_HOST: its REST calls (un-prefixed paths,
 * `Authorization: Bearer owner`, empty httpRequest.url) reach the emulator's port, and the tasks
 * reach a real Express handler with an OIDC token the emulator signed.
 */
import * as assert from 'node:assert/strict';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { status } from '@grpc/grpc-js';
import express from 'express';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFunctions } from 'firebase-admin/functions';
import { OAuth2Client } from 'google-auth-library';
import { createEmulatorClient, ManualClock, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { canRunOnWorker } from '../../src/emulator/worker-thread.js';
import { assertGrpcError } from './helpers.js';

const PROJECT = 'firebase-project';
const SERVICE_ACCOUNT = 'functions@firebase-project.iam.gserviceaccount.com';

interface Delivered {
  path: string;
  body: unknown;
  headers: http.IncomingHttpHeaders;
}

describe('emulator: firebase-admin task queues', () => {
  let clock: ManualClock;
  let emulator: EmulatorHandle;
  let server: http.Server;
  let baseUrl: string;
  let app: App;
  const delivered: Delivered[] = [];
  const savedHost = process.env.CLOUD_TASKS_EMULATOR_HOST;

  before(async () => {
    const web = express();
    web.post('/functions/:name', express.json(), (req, res) => {
      delivered.push({ path: req.path, body: req.body, headers: req.headers });
      res.status(204).end();
    });
    server = await new Promise<http.Server>((resolve) => {
      const s = web.listen(0, '127.0.0.1', () => resolve(s));
    });
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    emulator = await startEmulator({ clock, projectId: PROJECT, functionUrlBase: `${baseUrl}/functions` });
    process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
    app = initializeApp(
      {
        projectId: PROJECT,
        serviceAccountId: SERVICE_ACCOUNT,
        // Never used against the emulator (firebase-admin sends "Bearer owner"); spares a credentials lookup.
        credential: { getAccessToken: async () => ({ access_token: 'unused', expires_in: 3600 }) },
      },
      `emulator-test-${process.pid}`,
    );
  });

  after(async () => {
    if (savedHost === undefined) delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    else process.env.CLOUD_TASKS_EMULATOR_HOST = savedHost;
    await deleteApp(app);
    await emulator.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function waitForDeliveries(count: number): Promise<void> {
    for (let i = 0; delivered.length < count; i++) {
      if (i > 200) assert.fail(`only ${delivered.length} of ${count} tasks delivered`);
      await clock.advance(100);
      await emulator.idle();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it('enqueues with every option; the task reaches the Express handler with a verifiable token', async () => {
    const queue = getFunctions(app).taskQueue('sendInvoice');
    await queue.enqueue({ invoice: 42 }, { id: 'invoice-42', scheduleDelaySeconds: 30, dispatchDeadlineSeconds: 120, headers: { 'X-Tenant': 'acme' } });
    const client = createEmulatorClient(emulator);
    try {
      const name = `projects/${PROJECT}/locations/us-central1/queues/sendInvoice/tasks/invoice-42`;
      const [task] = await client.getTask({ name, responseView: 'FULL' });
      assert.equal(task.httpRequest?.url, `${baseUrl}/functions/sendInvoice`, 'empty url filled from functionUrlBase');
      assert.equal(Number(task.dispatchDeadline?.seconds), 120);
      assert.ok(Number(task.scheduleTime?.seconds) * 1000 >= clock.now() + 28_000, 'about 30 s ahead');
      assert.equal(task.httpRequest?.oidcToken?.serviceAccountEmail, SERVICE_ACCOUNT);
    } finally {
      await client.close();
    }
    assert.equal(delivered.length, 0, 'not before its time');
    await clock.advance(31_000);
    await waitForDeliveries(1);
    const [first] = delivered;
    assert.equal(first!.path, '/functions/sendInvoice');
    assert.deepEqual(first!.body, { data: { invoice: 42 } }, 'the onTaskDispatched body, passed through');
    assert.equal(first!.headers['x-tenant'], 'acme');
    assert.equal(first!.headers['content-type'], 'application/json');
    assert.equal(first!.headers['x-cloudtasks-queuename'], 'sendInvoice');
    assert.equal(first!.headers['x-cloudtasks-taskname'], 'invoice-42');
    const token = String(first!.headers.authorization).replace(/^Bearer /, '');
    const ticket = await new OAuth2Client().verifySignedJwtWithCertsAsync(token, emulator.pemCerts, `${baseUrl}/functions/sendInvoice`, [emulator.issuer]);
    assert.equal(ticket.getPayload()?.email, SERVICE_ACCOUNT);
  });

  it('answers a duplicate id with task-already-exists', async () => {
    const queue = getFunctions(app).taskQueue('dedupe');
    await queue.enqueue({ n: 1 }, { id: 'same-id', scheduleDelaySeconds: 600 });
    await assert.rejects(queue.enqueue({ n: 2 }, { id: 'same-id' }), (error: { code?: string }) => {
      assert.equal(error.code, 'functions/task-already-exists');
      return true;
    });
  });

  it('deletes a task (and ignores a delete of an unknown id)', async () => {
    const queue = getFunctions(app).taskQueue('deletions');
    await queue.enqueue({ n: 1 }, { id: 'to-delete', scheduleDelaySeconds: 60 });
    await queue.delete('to-delete');
    await queue.delete('never-existed');
    const client = createEmulatorClient(emulator);
    try {
      await assertGrpcError(client.getTask({ name: `projects/${PROJECT}/locations/us-central1/queues/deletions/tasks/to-delete` }), status.NOT_FOUND);
    } finally {
      await client.close();
    }
    const before = delivered.length;
    await clock.advance(120_000);
    await emulator.idle();
    assert.equal(delivered.length, before, 'a deleted task never runs');
  });

  it('keeps an emulator with function options on the app thread (functions cannot cross to a worker)', () => {
    assert.equal(canRunOnWorker({ functionUrlBase: `${baseUrl}/functions` }), true);
    assert.equal(canRunOnWorker({ functionUrlBase: (q) => `${baseUrl}/${q.queueId}` }), false);
    assert.equal(canRunOnWorker({ deniedPermissions: () => true }), false);
    assert.equal(canRunOnWorker({ deniedPermissions: ['cloudtasks.tasks.create'] }), true);
  });

  it('accepts every taskQueue() name form and an explicit uri', async () => {
    const before = delivered.length;
    await getFunctions(app).taskQueue(`locations/us-central1/functions/formA`).enqueue({ form: 'A' });
    await getFunctions(app).taskQueue(`projects/${PROJECT}/locations/us-central1/functions/formB`).enqueue({ form: 'B' });
    await getFunctions(app)
      .taskQueue('formC')
      .enqueue({ form: 'C' }, { uri: `${baseUrl}/functions/explicit` });
    await waitForDeliveries(before + 3);
    const paths = delivered
      .slice(before)
      .map((d) => d.path)
      .sort();
    assert.deepEqual(paths, ['/functions/explicit', '/functions/formA', '/functions/formB']);
  });
});
