/**
 * doctor's queue permission checks (TestIamPermissions) against the emulator's IAM methods.
 * NEEDS the emulator with IAM (issue 14, point 3): on an emulator that answers UNIMPLEMENTED,
 * doctor reports these checks "could not be checked" and this file fails.
 */
import assert from 'node:assert/strict';
import { createDeferred, type CreateDeferredOptions } from '../../src/index.js';
import { check, PROJECT, SERVICE_ACCOUNT, startDoctorEmulator, TARGET_URL, type DoctorEmulator } from './doctor-helpers.js';

const CONFIG: CreateDeferredOptions = {
  logger: false,
  projectId: PROJECT,
  queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 5 }, retryConfig: { maxAttempts: 3 } }],
  target: { url: TARGET_URL, serviceAccountEmail: SERVICE_ACCOUNT },
  auth: { mode: 'oidc', serviceAccountEmail: SERVICE_ACCOUNT, jwks: { keys: [] } },
};

describe("doctor: IAM on the queues (needs the emulator's IAM methods)", function () {
  this.timeout(30_000);
  let env: DoctorEmulator;

  before(async () => {
    env = await startDoctorEmulator();
  });
  after(() => env.stop());

  it('a correct set-up passes: tasks.create on every queue, and queues.update on the queues under queues:', async () => {
    const deferred = createDeferred(CONFIG);
    try {
      const report = await deferred.doctor({ requestTimeoutSeconds: 900 });
      const mail = check(report, 'iam.queue:mail');
      assert.equal(mail.status, 'pass', mail.detail);
      assert.match(mail.detail, /cloudtasks\.tasks\.create and cloudtasks\.queues\.update on queue mail/);
      const plain = check(report, 'iam.queue:default');
      assert.equal(plain.status, 'pass', plain.detail);
      assert.match(plain.detail, /cloudtasks\.tasks\.create on queue default/);
      assert.doesNotMatch(plain.detail, /queues\.update/, 'not asked where no queues: entry manages the queue');
      assert.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => c.status === 'fail')));
    } finally {
      await deferred.close();
    }
  });
});

describe("doctor: a denied permission (needs the emulator's deniedPermissions option)", function () {
  this.timeout(30_000);
  let env: DoctorEmulator;

  before(async () => {
    // The emulator's TestIamPermissions leaves out what this list names (startEmulator({ deniedPermissions })).
    env = await startDoctorEmulator({ deniedPermissions: ['cloudtasks.queues.update'] });
  });
  after(() => env.stop());

  it('a caller without queues.update on a queue under queues: fails with the Queue Admin fix; tasks.create alone passes', async () => {
    const deferred = createDeferred(CONFIG);
    try {
      const report = await deferred.doctor({ requestTimeoutSeconds: 900 });
      assert.equal(report.ok, false);
      const mail = check(report, 'iam.queue:mail');
      assert.equal(mail.status, 'fail', mail.detail);
      assert.match(mail.detail, /the caller lacks cloudtasks\.queues\.update on queue mail/);
      assert.match(mail.fix!, /--role=roles\/cloudtasks\.queueAdmin/);
      assert.doesNotMatch(mail.fix!, /--role=roles\/cloudtasks\.enqueuer/, 'tasks.create was granted');
      assert.equal(check(report, 'iam.queue:default').status, 'pass');
    } finally {
      await deferred.close();
    }
  });
});
