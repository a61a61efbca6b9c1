/** The embedded default, queue set-up from configuration, and an external emulator via CLOUD_TASKS_EMULATOR_HOST. */
import assert from 'node:assert/strict';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createDeferred } from '../../src/index.js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { recordingLogger, startApp } from '../helpers/app.js';

const MAIL = {
  name: 'mail',
  rateLimits: { maxDispatchesPerSecond: 5, maxConcurrentDispatches: 2 },
  retryConfig: { maxAttempts: 7, minBackoffSeconds: 1, maxBackoffSeconds: 60, maxDoublings: 3, maxRetryDurationSeconds: 600 },
};

describe('the embedded default', () => {
  const savedPort = process.env.PORT;
  afterEach(() => {
    if (savedPort === undefined) delete process.env.PORT;
    else process.env.PORT = savedPort;
  });

  it('with no Google configuration starts the emulator in process and says so in one log line', async () => {
    const logger = recordingLogger();
    const deferred = createDeferred({ logger });
    assert.equal(deferred.mode, 'embedded');
    try {
      await deferred.ready();
      assert.ok(deferred.emulator, 'emulator running');
      const lines = logger.lines.filter((l) => /embedded Cloud Tasks emulator/.test(l.message));
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.level, 'info');
      await deferred.ready();
      assert.equal(logger.lines.filter((l) => /embedded Cloud Tasks emulator/.test(l.message)).length, 1, 'only once');
    } finally {
      await deferred.close();
    }
  });

  it("targets the app's own handler URL, from PORT by default", async () => {
    process.env.PORT = '4321';
    const deferred = createDeferred({ logger: false, queues: [{ name: 'held' }] });
    deferred.task('noop', () => undefined);
    try {
      await deferred.ready();
      const client = createEmulatorClient(deferred.emulator!);
      const parent = 'projects/local-project/locations/us-central1/queues/held';
      await client.pauseQueue({ name: parent });
      await deferred.defer('noop', [], { queue: 'held' });
      const [[task]] = await client.listTasks({ parent, responseView: 'FULL' });
      assert.equal(task!.httpRequest?.url, 'http://127.0.0.1:4321/_ah/queue/deferred');
      assert.ok(task!.httpRequest?.oidcToken?.serviceAccountEmail, 'the emulator signs an OIDC token for it');
      await client.close();
    } finally {
      await deferred.close();
    }
  });

  it('creates configured queues with every RateLimits and RetryConfig field', async () => {
    const deferred = createDeferred({ logger: false, queues: [MAIL] });
    try {
      await deferred.ready();
      const client = createEmulatorClient(deferred.emulator!);
      const [queue] = await client.getQueue({ name: 'projects/local-project/locations/us-central1/queues/mail' });
      assert.equal(queue.rateLimits?.maxDispatchesPerSecond, 5);
      assert.equal(queue.rateLimits?.maxConcurrentDispatches, 2);
      assert.equal(queue.retryConfig?.maxAttempts, 7);
      assert.equal(Number(queue.retryConfig?.minBackoff?.seconds), 1);
      assert.equal(Number(queue.retryConfig?.maxBackoff?.seconds), 60);
      assert.equal(queue.retryConfig?.maxDoublings, 3);
      assert.equal(Number(queue.retryConfig?.maxRetryDuration?.seconds), 600);
      const [defaultQueue] = await client.getQueue({ name: 'projects/local-project/locations/us-central1/queues/default' });
      assert.equal(defaultQueue.state, 'RUNNING', 'the default queue exists too');
      await client.close();
    } finally {
      await deferred.close();
    }
  });
});

describe('CLOUD_TASKS_EMULATOR_HOST', () => {
  let emulator: EmulatorHandle;
  let client: CloudTasksClient;
  before(async () => {
    emulator = await startEmulator({ port: 0 });
    client = createEmulatorClient(emulator);
    process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
    process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = emulator.jwksUri;
  });
  after(async () => {
    delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
    await client.close();
    await emulator.stop();
  });

  it('uses the official client against that emulator: queues created and updated, tasks run', async () => {
    let ran = 0;
    const app = await startApp('express', { queues: [MAIL] }, (d) =>
      d.task('ping', () => {
        ran += 1;
      }),
    );
    try {
      assert.equal(app.deferred.mode, 'emulator');
      assert.equal(app.deferred.emulator, undefined, 'no embedded emulator started');
      const [queues] = await client.listQueues({ parent: 'projects/local-project/locations/us-central1' });
      assert.ok(queues.some((q) => q.name!.endsWith('/queues/mail')));
      const info = await app.deferred.defer('ping', [], { queue: 'mail' });
      assert.equal((await info.wait()).status, 'succeeded');
      assert.equal(ran, 1);
    } finally {
      await app.close();
    }
    // A later start with another configuration updates the queue in place.
    const again = createDeferred({ logger: false, queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 9 } }] });
    await again.ready();
    const [queue] = await client.getQueue({ name: 'projects/local-project/locations/us-central1/queues/mail' });
    assert.equal(queue.rateLimits?.maxDispatchesPerSecond, 9);
    assert.equal(queue.retryConfig?.maxAttempts, 7, 'fields not in the mask are kept');
    await again.close();
  });
});
