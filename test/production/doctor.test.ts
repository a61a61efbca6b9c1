/**
 * doctor against the Cloud Tasks emulator (official client over gRPC), a real Redis and a real
 * child process for the CLI: a correct set-up passes; each broken item is reported with its fix
 * and a failing result. The checks that need the emulator's IAM methods are in doctor-iam.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { redisStores } from '../../adapters/redis/index.js';
import { createDeferred, type CreateDeferredOptions, type DoctorReport } from '../../src/index.js';
import { formatReport, parseDoctorArgs } from '../../src/doctor.js';
import { check, freePort, PROJECT, SERVICE_ACCOUNT, startDoctorEmulator, startOwnRedis, TARGET_URL, type DoctorEmulator } from './doctor-helpers.js';

const GOOD: CreateDeferredOptions = {
  logger: false,
  projectId: PROJECT,
  queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 5 }, retryConfig: { maxAttempts: 3 } }],
  target: { url: TARGET_URL, serviceAccountEmail: SERVICE_ACCOUNT },
  auth: { mode: 'oidc', serviceAccountEmail: SERVICE_ACCOUNT, jwks: { keys: [] } },
};

/** The checks that do not need IAM on the emulator. */
const nonIam = (report: DoctorReport) => report.checks.filter((c) => !c.id.startsWith('iam.'));

async function doctorOf(
  options: CreateDeferredOptions,
  doctorOptions: Parameters<ReturnType<typeof createDeferred>['doctor']>[0] = { requestTimeoutSeconds: 900 },
): Promise<DoctorReport> {
  const deferred = createDeferred(options);
  try {
    return await deferred.doctor(doctorOptions);
  } finally {
    await deferred.close();
  }
}

describe('doctor', function () {
  this.timeout(30_000);
  let env: DoctorEmulator;

  before(async () => {
    env = await startDoctorEmulator();
  });
  after(() => env.stop());

  it('a correct set-up passes every check that does not need IAM, and changes nothing', async () => {
    const report = await doctorOf(GOOD);
    assert.deepEqual(
      nonIam(report)
        .filter((c) => c.status !== 'pass')
        .map((c) => `${c.id}: ${c.detail}`),
      [],
    );
    for (const id of [
      'queue.exists:mail',
      'queue.settings:mail',
      'queue.exists:default',
      'target.url',
      'target.audience',
      'deadline.requestTimeout',
      'store.reachable',
    ]) {
      assert.equal(check(report, id).status, 'pass', id);
    }
    // Read only: doctor did not create the queue it was told about (ready() would have).
    const [queues] = await env.client.listQueues({ parent: `projects/${PROJECT}/locations/us-central1` });
    assert.deepEqual(queues.map((q) => q.name!.split('/').pop()).sort(), ['default', 'mail']);
  });

  it('a missing queue fails with the gcloud command that creates it', async () => {
    const report = await doctorOf({ ...GOOD, queues: [...GOOD.queues!, { name: 'reports' }] });
    assert.equal(report.ok, false);
    const missing = check(report, 'queue.exists:reports');
    assert.equal(missing.status, 'fail');
    assert.match(missing.detail, /queue reports does not exist/);
    assert.match(missing.fix!, /gcloud tasks queues create reports --location=us-central1/);
    assert.match(missing.fix!, /roles\/cloudtasks\.queueAdmin/);
    const [queues] = await env.client.listQueues({ parent: `projects/${PROJECT}/locations/us-central1` });
    assert.ok(!queues.some((q) => q.name!.endsWith('/reports')), 'doctor did not create it');
  });

  it('a queue whose settings differ from queues: fails and names each field', async () => {
    const report = await doctorOf({
      ...GOOD,
      queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 5 }, retryConfig: { maxAttempts: 10, minBackoffSeconds: 2 } }],
    });
    assert.equal(report.ok, false);
    const settings = check(report, 'queue.settings:mail');
    assert.equal(settings.status, 'fail');
    assert.match(settings.detail, /retryConfig\.maxAttempts: configured 10, queue has 3/);
    assert.match(settings.detail, /retryConfig\.minBackoffSeconds: configured 2/);
    assert.doesNotMatch(settings.detail, /maxDispatchesPerSecond/);
    assert.match(settings.fix!, /queueAdmin|gcloud tasks queues update mail/);
  });

  it('a paused queue is a warning with the resume command', async () => {
    const name = `projects/${PROJECT}/locations/us-central1/queues/mail`;
    await env.client.pauseQueue({ name });
    try {
      const report = await doctorOf(GOOD);
      const exists = check(report, 'queue.exists:mail');
      assert.equal(exists.status, 'warn');
      assert.match(exists.fix!, /gcloud tasks queues resume mail/);
    } finally {
      await env.client.resumeQueue({ name });
    }
  });

  it('an audience the handler does not accept, or on another host, fails with the fix', async () => {
    const refused = await doctorOf({ ...GOOD, target: { ...GOOD.target, audience: 'https://api.example.com/tasks' } as CreateDeferredOptions['target'] });
    assert.equal(refused.ok, false);
    const first = check(refused, 'target.audience');
    assert.equal(first.status, 'fail');
    assert.match(first.detail, /audience "https:\/\/api\.example\.com\/tasks" but the handler accepts only "http:\/\/127\.0\.0\.1:8080\/_ah\/queue\/deferred"/);
    const otherHost = await doctorOf({
      ...GOOD,
      target: { url: TARGET_URL, serviceAccountEmail: SERVICE_ACCOUNT, audience: 'https://old-service-xyz.a.run.app' },
      auth: { mode: 'oidc', serviceAccountEmail: SERVICE_ACCOUNT, audience: 'https://old-service-xyz.a.run.app', jwks: { keys: [] } },
    });
    const second = check(otherHost, 'target.audience');
    assert.equal(second.status, 'fail');
    assert.match(second.detail, /names host old-service-xyz\.a\.run\.app, but tasks go to 127\.0\.0\.1:8080/);
    assert.match(second.fix!, /--add-custom-audiences/);
    const wrongAccount = await doctorOf({ ...GOOD, auth: { mode: 'oidc', serviceAccountEmail: 'someone-else@p.iam.gserviceaccount.com', jwks: { keys: [] } } });
    assert.equal(check(wrongAccount, 'target.serviceAccount').status, 'fail');
  });

  it('a dispatch deadline longer than the request timeout (or the lease) fails with both fixes', async () => {
    const report = await doctorOf(GOOD, { dispatchDeadlineSeconds: 900, requestTimeoutSeconds: 300 });
    assert.equal(report.ok, false);
    const deadline = check(report, 'deadline.requestTimeout');
    assert.equal(deadline.status, 'fail');
    assert.match(deadline.detail, /dispatch deadline \(900 s\) is longer than the request timeout \(300 s\)/);
    assert.match(deadline.fix!, /gcloud run services update SERVICE --timeout=900/);
    assert.equal(check(report, 'deadline.lease').status, 'fail', '900 s is past the default 630 s lease');
    const unknown = await doctorOf(GOOD, {});
    assert.equal(check(unknown, 'deadline.requestTimeout').status, 'unchecked', 'not on Cloud Run and not told');
  });

  it('an unreachable state store fails', async () => {
    const port = await freePort();
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      const report = await doctorOf(
        { ...GOOD, stores: redisStores({ client, prefix: `doctor-${Date.now()}`, sweepIntervalMs: 3_600_000 }) },
        { requestTimeoutSeconds: 900, timeoutMs: 3000 },
      );
      assert.equal(report.ok, false);
      const store = check(report, 'store.reachable');
      assert.equal(store.status, 'fail');
      assert.match(store.detail, /the redis state store does not answer/);
      assert.ok(store.fix);
    } finally {
      client.disconnect();
    }
  });

  it('Redis: a volatile-* eviction policy fails with the Memorystore setting; noeviction passes', async () => {
    for (const [policy, expected] of [
      ['volatile-lru', 'fail'],
      ['noeviction', 'pass'],
    ] as const) {
      const redis = await startOwnRedis(policy);
      try {
        const stores = redisStores({ client: redis.client, prefix: `doctor-${Date.now()}`, sweepIntervalMs: 3_600_000 });
        const report = await doctorOf({ ...GOOD, stores }, { requestTimeoutSeconds: 900, redis: redis.client });
        const eviction = check(report, 'store.redisEviction');
        assert.equal(eviction.status, expected, eviction.detail);
        assert.equal(check(report, 'store.reachable').status, 'pass');
        if (expected === 'fail') {
          assert.equal(report.ok, false);
          assert.match(eviction.detail, /maxmemory-policy is volatile-lru/);
          assert.match(eviction.fix!, /--update-redis-config=maxmemory-policy=noeviction/);
        }
        await stores.close();
      } finally {
        await redis.stop();
      }
    }
  });

  it('formats a report with each fix under its check', async () => {
    const report = await doctorOf({ ...GOOD, queues: [{ name: 'reports' }] });
    const text = formatReport(report);
    assert.match(text, /FAIL queue\.exists:reports: queue reports does not exist in us-central1\n\s+fix: gcloud tasks queues create reports/);
    assert.match(text, /check\(s\) failed/);
    assert.throws(() => parseDoctorArgs(['--nope']), /unknown option --nope/);
    assert.throws(() => parseDoctorArgs(['--request-timeout', 'soon']), /needs a number of seconds/);
  });

  describe('npx cloud-defer doctor (child process)', () => {
    const cli = path.resolve(__dirname, '..', '..', 'src', 'cli.js');
    // What bin/cloud-defer.cjs does, over this build instead of dist/.
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const script = `require(${JSON.stringify(cli)}).main(process.argv.slice(1)).catch((err) => { process.stderr.write('cloud-defer: ' + err.message + '\\n'); process.exit(1); });`;
        const child = spawn(process.execPath, ['-e', script, '--', 'doctor', ...args], { env: { ...process.env, METADATA_SERVER_DETECTION: 'none' } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.once('error', reject);
        child.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const base = ['--project', PROJECT, '--url', TARGET_URL, '--service-account', SERVICE_ACCOUNT, '--request-timeout', '900'];

    it('exits 0 on a correct set-up and prints the report', async () => {
      const result = await run([...base, '--queue', 'mail']);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /ok {3}queue\.exists:mail/);
      assert.match(result.stdout, /All checks passed/);
    });

    it('exits 1 when a check fails, with the fix; --json gives the report as data', async () => {
      const result = await run([...base, '--queue', 'missing-queue', '--json']);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout) as DoctorReport;
      assert.equal(report.ok, false);
      const missing = report.checks.find((c) => c.id === 'queue.exists:missing-queue');
      assert.equal(missing?.status, 'fail');
      assert.match(missing?.fix ?? '', /gcloud tasks queues create missing-queue/);
    });

    it('exits 1 with the usage on a bad flag', async () => {
      const result = await run(['--bogus']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /unknown option --bogus/);
    });
  });
});
