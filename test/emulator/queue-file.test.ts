/** Queues preconfigured from a file (djangae-style list or App Engine's queue.yaml), and App Engine routing per service. */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { status } from '@grpc/grpc-js';
import { createEmulatorClient, ManualClock, QueueFileError, startEmulator } from '../../src/emulator/index.js';
import { assertGrpcError, PARENT, PROJECT, queuePath, startTestContext, taskPath, TargetServer, toMs } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'emulator-queues-'));
function file(name: string, text: string): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

const DJANGAE_LIST = `
- name: default
  rate_per_second: 5
  rate_max_concurrent: 10
  retry_max_attempts: 3
- name: emails
  max_dispatches_per_second: 2.5
  max_concurrent_dispatches: 4
  max_burst_size: 7
  min_backoff: 2s
  max_backoff: 120
  max_doublings: 2
  max_retry_duration: 1h
  app_engine_routing_override: { service: mailer, version: v2 }
  logging_sampling_ratio: 0.5
  state: PAUSED
`;

const QUEUE_YAML = `
total_storage_limit: 120M
queue:
- name: default
  rate: 1/s
  bucket_size: 5
- name: mail-queue
  mode: push
  rate: 2000/d
  bucket_size: 10
  max_concurrent_requests: 3
  target: v1.mailer
  retry_parameters:
    task_retry_limit: 7
    task_age_limit: 2d
    min_backoff_seconds: 10
    max_backoff_seconds: 200
    max_doublings: 3
`;

describe('emulator: queues from a file', () => {
  it('creates a djangae-style list of queues with every field', async () => {
    const emulator = await startEmulator({ projectId: PROJECT, queues: file('djangae.yaml', DJANGAE_LIST) });
    const client = createEmulatorClient(emulator);
    try {
      const [main] = await client.getQueue({ name: queuePath('default') });
      assert.equal(main.rateLimits?.maxDispatchesPerSecond, 5);
      assert.equal(main.rateLimits?.maxConcurrentDispatches, 10);
      assert.equal(main.retryConfig?.maxAttempts, 3);
      assert.equal(main.state, 'RUNNING');
      const [emails] = await client.getQueue({ name: queuePath('emails') });
      assert.equal(emails.rateLimits?.maxDispatchesPerSecond, 2.5);
      assert.equal(emails.rateLimits?.maxConcurrentDispatches, 4);
      assert.equal(emails.rateLimits?.maxBurstSize, 7);
      assert.equal(toMs(emails.retryConfig?.minBackoff), 2000);
      assert.equal(toMs(emails.retryConfig?.maxBackoff), 120_000);
      assert.equal(emails.retryConfig?.maxDoublings, 2);
      assert.equal(toMs(emails.retryConfig?.maxRetryDuration), 3_600_000);
      assert.equal(emails.appEngineRoutingOverride?.service, 'mailer');
      assert.equal(emails.appEngineRoutingOverride?.version, 'v2');
      assert.equal(emails.stackdriverLoggingConfig?.samplingRatio, 0.5);
      assert.equal(emails.state, 'PAUSED');
    } finally {
      await client.close();
      await emulator.stop();
    }
  });

  it('creates App Engine queue.yaml queues with every field, and keeps their task names taken ~9 days', async () => {
    const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    const target = await TargetServer.start(clock);
    const emulator = await startEmulator({ clock, projectId: PROJECT, queues: file('queue.yaml', QUEUE_YAML), appEngineBaseUrl: target.baseUrl });
    const client = createEmulatorClient(emulator);
    try {
      const [main] = await client.getQueue({ name: queuePath('default') });
      assert.equal(main.rateLimits?.maxDispatchesPerSecond, 1);
      assert.equal(main.rateLimits?.maxBurstSize, 5, 'bucket_size is max_burst_size');
      const [mail] = await client.getQueue({ name: queuePath('mail-queue') });
      assert.ok(Math.abs(mail.rateLimits!.maxDispatchesPerSecond! - 2000 / 86400) < 1e-9, '2000/d');
      assert.equal(mail.rateLimits?.maxBurstSize, 10);
      assert.equal(mail.rateLimits?.maxConcurrentDispatches, 3);
      assert.deepEqual([mail.appEngineRoutingOverride?.service, mail.appEngineRoutingOverride?.version], ['mailer', 'v1']);
      assert.equal(mail.retryConfig?.maxAttempts, 7, 'max_attempts "has the same meaning as task_retry_limit"');
      assert.equal(toMs(mail.retryConfig?.maxRetryDuration), 2 * 86_400_000);
      assert.equal(toMs(mail.retryConfig?.minBackoff), 10_000);
      assert.equal(toMs(mail.retryConfig?.maxBackoff), 200_000);
      assert.equal(mail.retryConfig?.maxDoublings, 3);

      const name = taskPath('default', 'once');
      await client.createTask({ parent: queuePath('default'), task: { name, appEngineHttpRequest: { relativeUri: '/once' } } });
      await target.waitForRequests(1);
      await emulator.idle();
      await clock.advance(8 * 86_400_000);
      await assertGrpcError(
        client.createTask({ parent: queuePath('default'), task: { name, appEngineHttpRequest: { relativeUri: '/once' } } }),
        status.ALREADY_EXISTS,
      );
      await clock.advance(2 * 86_400_000);
      await client.createTask({ parent: queuePath('default'), task: { name, appEngineHttpRequest: { relativeUri: '/once' } } });

      const [updated] = await client.updateQueue({
        queue: { name: queuePath('default'), rateLimits: { maxDispatchesPerSecond: 50 } },
        updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
      });
      assert.equal(updated.rateLimits?.maxBurstSize, 10, 'UpdateQueue resets the burst from the rate, as the proto says');
    } finally {
      await client.close();
      await emulator.stop();
      await target.close();
    }
  });

  it('takes the same content in code, and refuses bad files with a message that says what is wrong', async () => {
    const emulator = await startEmulator({ projectId: PROJECT, queues: { queues: [{ name: 'inline', maxAttempts: 4 }] } });
    const client = createEmulatorClient(emulator);
    try {
      const [inline] = await client.getQueue({ name: queuePath('inline') });
      assert.equal(inline.retryConfig?.maxAttempts, 4);
    } finally {
      await client.close();
      await emulator.stop();
    }
    const refuses = async (text: string, message: RegExp): Promise<void> => {
      await assert.rejects(startEmulator({ queues: file('bad.yaml', text) }), (error: unknown) => {
        assert.ok(error instanceof QueueFileError);
        assert.equal(error.code, 'EMULATOR_QUEUE_FILE_INVALID');
        assert.match(error.message, message);
        return true;
      });
    };
    await refuses('- name: a\n  rate_per_secnd: 5\n', /queue 1\.rate_per_secnd: unknown queue field/);
    await refuses('queue:\n- name: p\n  mode: pull\n', /pull.*not supported/);
    await refuses('queue:\n- name: fast\n  rate: 9000/s\n', /fast.*less than or equal to 500/);
    await refuses('- rate_per_second: 1\n', /every queue needs a name/);
    await refuses('- name: bad_name!\n', /Queue ID/);
    await refuses('queue: [', /not valid YAML/);
  });

  it('routes App Engine tasks per service and version', async () => {
    const fallback = await TargetServer.start(new ManualClock());
    const worker = await TargetServer.start(new ManualClock());
    const workerV2 = await TargetServer.start(new ManualClock());
    const ctx = await startTestContext({
      appEngineBaseUrl: fallback.baseUrl,
      appEngineRoutes: { worker: worker.baseUrl, 'v2.worker': workerV2.baseUrl },
    });
    try {
      const q = queuePath('routed');
      await ctx.client.createQueue({ parent: PARENT, queue: { name: q } });
      const task = (relativeUri: string, service?: string, version?: string) =>
        ctx.client.createTask({ parent: q, task: { appEngineHttpRequest: { relativeUri, appEngineRouting: { service, version } } } });
      await task('/to-default');
      await task('/to-worker', 'worker');
      await task('/to-worker-v2', 'worker', 'v2');
      await task('/to-worker-v9', 'worker', 'v9');
      assert.deepEqual(
        (await fallback.waitForRequests(1)).map((r) => r.url),
        ['/to-default'],
      );
      assert.deepEqual((await worker.waitForRequests(2)).map((r) => r.url).sort(), ['/to-worker', '/to-worker-v9']);
      assert.deepEqual(
        (await workerV2.waitForRequests(1)).map((r) => r.url),
        ['/to-worker-v2'],
      );
    } finally {
      await ctx.close();
      await Promise.all([fallback.close(), worker.close(), workerV2.close()]);
    }
  });

  it('CLI: --queues FILE creates the queues before it prints the address', async () => {
    const cli = path.join(__dirname, '..', '..', 'src', 'cli.js');
    const child = spawn(
      process.execPath,
      [
        '-e',
        'require(process.argv[1]).main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); })',
        cli,
        'emulator',
        '--port',
        '0',
        '--project',
        PROJECT,
        '--queues',
        file('cli-queue.yaml', QUEUE_YAML),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let host = '';
      for await (const line of readline.createInterface({ input: child.stdout! })) {
        const match = /^CLOUD_TASKS_EMULATOR_HOST=(.+)$/.exec(line);
        if (match) {
          host = match[1]!;
          break;
        }
      }
      const client = createEmulatorClient(host);
      try {
        const [mail] = await client.getQueue({ name: queuePath('mail-queue') });
        assert.equal(mail.retryConfig?.maxAttempts, 7);
      } finally {
        await client.close();
      }
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});
