/**
 * Every v2 RPC through the official client in its three transports, gRPC, `fallback: true` and
 * `fallback: 'rest'`, against one emulator port: each mode runs the same scenario on its own
 * emulator started at the same emulated time, and the three transcripts must be identical.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createEmulatorClient, ManualClock, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { PARENT, PROJECT, queuePath, seconds, TargetServer, taskPath } from './helpers.js';

type Mode = 'grpc' | true | 'rest';
const MODES: Mode[] = ['grpc', true, 'rest'];
const START_MS = Date.UTC(2027, 0, 4, 12, 0, 0);

/** Client output in one comparable form: int64 as strings, bytes as base64, unset/zero values dropped. */
function normalize(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return value.length === 0 ? undefined : Buffer.from(value).toString('base64');
  }
  if (Array.isArray(value)) {
    const items = value.map(normalize);
    return items.length === 0 ? undefined : items;
  }
  if (typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (typeof object['low'] === 'number' && typeof object['high'] === 'number' && 'unsigned' in object) {
      return normalize(String(value));
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(object).sort()) {
      const normal = normalize(object[key]);
      if (normal !== undefined) out[key] = normal;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (typeof value === 'number') return value === 0 ? undefined : String(value);
  if (typeof value === 'string') return value === '' || value === '0' ? undefined : value;
  if (value === false) return undefined;
  return value;
}

interface ErrorRecord {
  code: number | undefined;
  message: string;
}

async function failure(call: Promise<unknown>): Promise<ErrorRecord> {
  try {
    await call;
  } catch (error) {
    const e = error as { code?: number; details?: string; message?: string; response?: { status: number } };
    if (e.response) {
      // REST mode: google-auth-library's fetch throws on a non-2xx answer before gax decodes it, so
      // the client surfaces the HTTP status and Google's JSON error body; read the gRPC code from it.
      const body = JSON.parse(String(e.message)) as { error: { code: number; message: string; status: keyof typeof status } };
      assert.equal(body.error.code, e.response.status, 'error.code is the HTTP status');
      return { code: status[body.error.status], message: body.error.message };
    }
    // gRPC errors carry "5 NOT_FOUND: " before the message.
    return { code: e.code, message: String(e.details || e.message).replace(/^\d+ [A-Z_]+: /, '') };
  }
  assert.fail('the call should have failed');
}

async function scenario(client: CloudTasksClient, target: TargetServer, clock: ManualClock, emulator: EmulatorHandle): Promise<unknown[]> {
  const log: unknown[] = [];
  const record = (label: string, value: unknown): void => {
    log.push({ [label]: normalize(value) });
  };
  const q = queuePath('modes');
  const other = queuePath('modes-other');

  const [created] = await client.createQueue({
    parent: PARENT,
    queue: {
      name: q,
      rateLimits: { maxDispatchesPerSecond: 20, maxConcurrentDispatches: 7 },
      retryConfig: { maxAttempts: 5, minBackoff: seconds(0.5), maxBackoff: seconds(30), maxDoublings: 3, maxRetryDuration: seconds(600) },
      stackdriverLoggingConfig: { samplingRatio: 0.25 },
    },
  });
  record('createQueue', created);
  assert.equal(created.rateLimits?.maxConcurrentDispatches, 7);
  await client.createQueue({ parent: PARENT, queue: { name: other } });
  record('getQueue', (await client.getQueue({ name: q }))[0]);
  const [page, , listReply] = await client.listQueues({ parent: PARENT, pageSize: 1, filter: 'state: RUNNING' }, { autoPaginate: false });
  record('listQueues', { page, nextPageToken: listReply?.nextPageToken });
  assert.equal(page.length, 1);
  assert.ok(listReply?.nextPageToken, 'a second page');

  const [updated] = await client.updateQueue({
    queue: { name: q, rateLimits: { maxDispatchesPerSecond: 3 } },
    updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
  });
  record('updateQueue', updated);
  assert.equal(updated.rateLimits?.maxDispatchesPerSecond, 3);
  assert.equal(updated.rateLimits?.maxConcurrentDispatches, 7, 'outside the mask: kept');
  const [paused] = await client.pauseQueue({ name: q });
  assert.equal(paused.state, 'PAUSED');
  record('pauseQueue', paused);
  record('resumeQueue', (await client.resumeQueue({ name: q }))[0]);
  await client.pauseQueue({ name: q });

  const [httpTask] = await client.createTask({
    parent: q,
    responseView: 'FULL',
    task: {
      name: taskPath('modes', 'http-1'),
      scheduleTime: { seconds: Math.floor(START_MS / 1000) + 60, nanos: 123_456_789 },
      dispatchDeadline: seconds(45),
      httpRequest: {
        url: target.url('/modes'),
        httpMethod: 'PUT',
        headers: { 'X-Mode': 'same' },
        body: Buffer.from('{"bytes":"as base64"}'),
        oidcToken: { serviceAccountEmail: 'tasks@test-project.iam.gserviceaccount.com' },
      },
    },
  });
  record('createTask', httpTask);
  assert.equal(httpTask.view, 'FULL');
  assert.equal(Number(httpTask.scheduleTime?.nanos), 123_456_000, 'microseconds kept');
  assert.equal(httpTask.httpRequest?.httpMethod, 'PUT');
  const [aeTask] = await client.createTask({
    parent: q,
    task: { name: taskPath('modes', 'ae-1'), appEngineHttpRequest: { relativeUri: '/ae', appEngineRouting: { service: 'worker' } } },
  });
  record('createTask appEngine', aeTask);
  record('getTask BASIC', (await client.getTask({ name: httpTask.name }))[0]);
  const [full] = await client.getTask({ name: httpTask.name, responseView: 'FULL' });
  record('getTask FULL', full);
  assert.equal(Buffer.from(full.httpRequest!.body as Uint8Array).toString(), '{"bytes":"as base64"}');
  const [tasks, , tasksReply] = await client.listTasks({ parent: q, responseView: 'FULL', pageSize: 1 }, { autoPaginate: false });
  record('listTasks', { tasks, nextPageToken: tasksReply?.nextPageToken });

  const seenBefore = target.requests.length;
  const [ran] = await client.runTask({ name: httpTask.name });
  record('runTask', ran);
  assert.equal(ran.dispatchCount, 1);
  const received = (await target.waitForRequests(seenBefore + 1))[seenBefore];
  assert.equal(received!.method, 'PUT');
  assert.equal(received!.body.toString(), '{"bytes":"as base64"}');
  assert.equal(received!.headers['x-mode'], 'same');
  await emulator.idle();
  await client.deleteTask({ name: aeTask.name });

  const gone = await failure(client.getTask({ name: aeTask.name }));
  assert.deepEqual(gone.code, status.NOT_FOUND);
  record('getTask missing', gone);
  const twice = await failure(client.createQueue({ parent: PARENT, queue: { name: q } }));
  assert.equal(twice.code, status.ALREADY_EXISTS);
  record('createQueue twice', twice);
  const invalid = await failure(client.createTask({ parent: q, task: { httpRequest: { url: 'ftp://x' } } }));
  assert.equal(invalid.code, status.INVALID_ARGUMENT);
  record('createTask invalid', invalid);
  const noQueue = await failure(client.deleteQueue({ name: queuePath('never-made') }));
  assert.deepEqual(noQueue, { code: status.NOT_FOUND, message: 'Requested entity was not found.' });
  record('deleteQueue missing', noQueue);
  const missing = await failure(client.getQueue({ name: queuePath('never-made') }));
  assert.equal(missing.code, status.NOT_FOUND);

  const [policy] = await client.setIamPolicy({
    resource: q,
    policy: { bindings: [{ role: 'roles/cloudtasks.enqueuer', members: ['serviceAccount:app@test-project.iam.gserviceaccount.com'] }] },
  });
  assert.equal(policy.bindings?.[0]?.role, 'roles/cloudtasks.enqueuer');
  record('setIamPolicy', policy);
  record('getIamPolicy', (await client.getIamPolicy({ resource: q }))[0]);
  const [allowed] = await client.testIamPermissions({ resource: q, permissions: ['cloudtasks.tasks.create', 'cloudtasks.queues.update'] });
  assert.deepEqual(allowed.permissions, ['cloudtasks.tasks.create', 'cloudtasks.queues.update']);
  record('testIamPermissions', allowed);

  await clock.advance(1000);
  record('purgeQueue', (await client.purgeQueue({ name: q }))[0]);
  const location: unknown = await client.getLocation({ name: PARENT });
  record('getLocation', Array.isArray(location) ? location[0] : location);
  const locations: unknown[] = [];
  for await (const location of client.listLocationsAsync({ name: `projects/${PROJECT}` })) locations.push(location);
  record('listLocations', locations);
  assert.equal(locations.length, 1);
  await client.deleteQueue({ name: other });
  record('getQueue deleted', await failure(client.getQueue({ name: other })));
  return log;
}

describe('emulator: the official client over gRPC, fallback: true and fallback: rest', () => {
  const transcripts = new Map<Mode, unknown[]>();
  // One target for all modes, so that the task URLs (and so the transcripts) are the same.
  let target: TargetServer;
  before(async () => {
    target = await TargetServer.start(new ManualClock(START_MS));
  });
  after(async () => {
    await target.close();
  });

  for (const mode of MODES) {
    it(`runs every v2 RPC with ${mode === 'grpc' ? 'gRPC' : `fallback: ${JSON.stringify(mode)}`}`, async () => {
      const clock = new ManualClock(START_MS);
      const emulator = await startEmulator({ clock });
      const client = createEmulatorClient(emulator, mode === 'grpc' ? {} : { fallback: mode });
      try {
        transcripts.set(mode, await scenario(client, target, clock, emulator));
      } finally {
        await client.close();
        await emulator.stop();
      }
    });
  }

  it('gets the same results in all three modes', () => {
    assert.equal(transcripts.size, 3, 'every mode ran');
    const grpc = transcripts.get('grpc');
    assert.deepEqual(transcripts.get(true), grpc);
    assert.deepEqual(transcripts.get('rest'), grpc);
  });
});
