/** IAM on queues (policy round trip, etag, deny list) and the v2beta3 API as Google's samples call it. */
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { v2beta3 } from '@google-cloud/tasks';
import { OAuth2Client } from 'google-auth-library';
import { createEmulatorClient, RealClock, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { assertGrpcError, PARENT, PROJECT, LOCATION, queuePath, TargetServer, uniqueQueueId } from './helpers.js';

const ENQUEUER = 'serviceAccount:app@test-project.iam.gserviceaccount.com';

describe('emulator: IAM methods', () => {
  let emulator: EmulatorHandle;
  before(async () => {
    emulator = await startEmulator({
      deniedPermissions: (queue, permission) => queue.endsWith('/locked') || permission === 'cloudtasks.queues.delete',
    });
  });
  after(async () => {
    await emulator.stop();
  });

  it('keeps a policy per queue: set, get, etag-guarded updates', async () => {
    const client = createEmulatorClient(emulator);
    try {
      const resource = queuePath(uniqueQueueId('iam'));
      const otherQueue = queuePath(uniqueQueueId('iam'));
      await client.createQueue({ parent: PARENT, queue: { name: resource } });
      await client.createQueue({ parent: PARENT, queue: { name: otherQueue } });
      const [empty] = await client.getIamPolicy({ resource });
      assert.deepEqual(empty.bindings, []);
      const [set] = await client.setIamPolicy({
        resource,
        policy: { bindings: [{ role: 'roles/cloudtasks.enqueuer', members: [ENQUEUER] }], etag: empty.etag },
      });
      const [read] = await client.getIamPolicy({ resource });
      assert.deepEqual(
        read.bindings?.map((b) => [b.role, b.members]),
        [['roles/cloudtasks.enqueuer', [ENQUEUER]]],
      );
      assert.deepEqual(Buffer.from(read.etag as Uint8Array), Buffer.from(set.etag as Uint8Array));
      assert.notDeepEqual(Buffer.from(read.etag as Uint8Array), Buffer.from(empty.etag as Uint8Array), 'a new etag per change');
      const [other] = await client.getIamPolicy({ resource: otherQueue });
      assert.deepEqual(other.bindings, [], 'policies are per queue');

      await assertGrpcError(client.setIamPolicy({ resource, policy: { bindings: [], etag: empty.etag } }), grpc.status.ABORTED, /concurrent policy changes/);
      await assertGrpcError(
        client.setIamPolicy({ resource, policy: { bindings: [{ role: 'roles/cloudtasks.viewer', members: ['alice'] }] } }),
        grpc.status.INVALID_ARGUMENT,
      );
      await assertGrpcError(client.getIamPolicy({ resource: queuePath('no-such-queue') }), grpc.status.NOT_FOUND);
    } finally {
      await client.close();
    }
  });

  it('answers TestIamPermissions with the permissions asked for, minus the configured denials', async () => {
    for (const fallback of [undefined, 'rest'] as const) {
      const client = createEmulatorClient(emulator, { fallback });
      try {
        const open = queuePath(uniqueQueueId('perm'));
        const locked = queuePath('locked');
        await client.createQueue({ parent: PARENT, queue: { name: open } });
        if (fallback === undefined) await client.createQueue({ parent: PARENT, queue: { name: locked } });
        const asked = ['cloudtasks.tasks.create', 'cloudtasks.queues.update', 'cloudtasks.queues.delete'];
        const [allowed] = await client.testIamPermissions({ resource: open, permissions: asked });
        assert.deepEqual(allowed.permissions, ['cloudtasks.tasks.create', 'cloudtasks.queues.update']);
        const [none] = await client.testIamPermissions({ resource: locked, permissions: asked });
        assert.deepEqual(none.permissions ?? [], []);
      } finally {
        await client.close();
      }
    }
  });

  it('denies a fixed list when given one', async () => {
    const strict = await startEmulator({ deniedPermissions: ['cloudtasks.queues.update'] });
    const client = createEmulatorClient(strict);
    try {
      const resource = queuePath('strict');
      await client.createQueue({ parent: PARENT, queue: { name: resource } });
      const [answer] = await client.testIamPermissions({
        resource,
        permissions: ['cloudtasks.tasks.create', 'cloudtasks.queues.update'],
      });
      assert.deepEqual(answer.permissions, ['cloudtasks.tasks.create']);
      await assertGrpcError(client.testIamPermissions({ resource, permissions: ['cloudtasks.*'] }), grpc.status.INVALID_ARGUMENT);
    } finally {
      await client.close();
      await strict.stop();
    }
  });
});

describe('emulator: v2beta3 through Google sample calls', () => {
  let emulator: EmulatorHandle;
  let target: TargetServer;
  before(async () => {
    emulator = await startEmulator();
    target = await TargetServer.start(new RealClock());
  });
  after(async () => {
    await emulator.stop();
    await target.close();
  });

  function staticTokenClient(): OAuth2Client {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'sample', expiry_date: Date.now() + 3_600_000 });
    return auth;
  }

  function sampleClient(fallback?: 'rest'): v2beta3.CloudTasksClient {
    const [host, port] = [emulator.address.split(':')[0]!, emulator.port];
    return fallback
      ? new v2beta3.CloudTasksClient({
          fallback,
          apiEndpoint: host,
          port,
          protocol: 'http',
          // The emulator accepts any bearer token; gax needs some auth client to ask.
          authClient: staticTokenClient() as never,
        })
      : new v2beta3.CloudTasksClient({ apiEndpoint: host, port, sslCreds: grpc.credentials.createInsecure(), universeDomain: 'googleapis.com' });
  }

  it('creates a queue with App Engine routing, lists it, and creates an HTTP task as the tutorial does', async () => {
    const client = sampleClient();
    try {
      // createQueue sample: a queue routed to an App Engine service.
      const [queue] = await client.createQueue({
        parent: client.locationPath(PROJECT, LOCATION),
        queue: { name: client.queuePath(PROJECT, LOCATION, 'beta-queue'), appEngineHttpQueue: { appEngineRoutingOverride: { service: 'worker' } } },
      });
      assert.equal(queue.appEngineHttpQueue?.appEngineRoutingOverride?.service, 'worker');
      assert.equal(queue.type, 'PUSH');
      // listQueues sample.
      const [queues] = await client.listQueues({ parent: client.locationPath(PROJECT, LOCATION) });
      assert.deepEqual(
        queues.map((q) => q.name),
        [client.queuePath(PROJECT, LOCATION, 'beta-queue')],
      );

      // createHttpTask sample: base64 body given as a string, schedule time in seconds.
      const parent = client.queuePath(PROJECT, LOCATION, 'beta-queue');
      const task = {
        httpRequest: {
          headers: { 'Content-Type': 'text/plain' },
          httpMethod: 'POST' as const,
          url: target.url('/beta'),
          body: Buffer.from('Hello, World!').toString('base64'),
        },
        scheduleTime: { seconds: Math.floor(Date.now() / 1000) },
      };
      const [response] = await client.createTask({ parent, task });
      assert.match(response.name!, new RegExp(`^${parent}/tasks/\\d+$`));
      const [request] = await target.waitForRequests(1);
      assert.equal(request!.body.toString(), 'Hello, World!');
      assert.equal(request!.headers['content-type'], 'text/plain');
      await client.deleteQueue({ name: parent });
    } finally {
      await client.close();
    }
  });

  it('serves v2beta3 over REST as well', async () => {
    const client = sampleClient('rest');
    try {
      const parent = client.locationPath(PROJECT, LOCATION);
      const name = client.queuePath(PROJECT, LOCATION, 'beta-rest');
      await client.createQueue({ parent, queue: { name } });
      const [queue] = await client.pauseQueue({ name });
      assert.equal(queue.state, 'PAUSED');
      const [task] = await client.createTask({ parent: name, task: { httpRequest: { url: target.url('/beta-rest') } } });
      const [tasks] = await client.listTasks({ parent: name });
      assert.deepEqual(
        tasks.map((t) => t.name),
        [task.name],
      );
    } finally {
      await client.close();
    }
  });
});
