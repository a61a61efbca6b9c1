/**
 * The default logger where the platform variables say "Google Cloud": a real child process whose
 * stdout must be one JSON object per line, with severity, task labels and the delivery's trace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'platform-app.js');

interface ChildRun {
  code: number | null;
  stdout: string[];
  stderr: string;
}

function runFixture(env: Record<string, string>): Promise<ChildRun> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !['K_SERVICE', 'GAE_ENV', 'KUBERNETES_SERVICE_HOST', 'CLOUD_TASKS_EMULATOR_HOST', 'CLOUD_TASKS_EMULATOR_JWKS_URI'].includes(k))
      base[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE], { env: { ...base, METADATA_SERVER_DETECTION: 'none', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout: stdout.split('\n').filter((l) => l.length > 0), stderr }));
  });
}

function traceIdOf(run: ChildRun): string {
  const match = /^TRACE ([0-9a-f]{32})$/m.exec(run.stderr);
  assert.ok(match, run.stderr);
  return match[1]!;
}

function parseAll(lines: string[]): Array<Record<string, unknown>> {
  assert.ok(lines.length > 0, 'something was logged');
  return lines.map((line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.match(String(entry.severity), /^(INFO|WARNING|ERROR)$/, line);
    assert.equal(typeof entry.message, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(entry.time))));
    return entry;
  });
}

describe('default logger on Google Cloud (child processes)', function () {
  this.timeout(60_000);
  let emulator: EmulatorHandle;

  before(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  after(() => emulator.stop());

  it("on GKE (KUBERNETES_SERVICE_HOST): every line is JSON; the failed attempts carry severity, labels, stack_trace and the delivery's trace", async () => {
    const run = await runFixture({
      FIXTURE: 'deliver',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      GOOGLE_CLOUD_PROJECT: 'gke-project',
      CLOUD_TASKS_EMULATOR_HOST: emulator.address,
      CLOUD_TASKS_EMULATOR_JWKS_URI: emulator.jwksUri,
    });
    assert.equal(run.code, 0, run.stderr);
    const traceId = traceIdOf(run);
    const entries = parseAll(run.stdout);
    const attempts = entries.filter((e) => (e['logging.googleapis.com/labels'] as Record<string, string> | undefined)?.taskName === 'chargeCard');
    assert.equal(attempts.length, 2, run.stdout.join('\n'));
    const [retried, permanent] = attempts;
    assert.equal(retried!.severity, 'ERROR');
    assert.match(String(retried!.stack_trace), /Error: card service timed out\n\s+at /);
    assert.equal(permanent!.severity, 'WARNING');
    for (const entry of attempts) {
      assert.equal(entry['logging.googleapis.com/trace'], `projects/gke-project/traces/${traceId}`);
      const labels = entry['logging.googleapis.com/labels'] as Record<string, string>;
      assert.equal(labels.queue, 'default');
      assert.ok(labels.taskId && labels.attempt !== undefined);
    }
  });

  it("on Cloud Run (K_SERVICE): every line is JSON with severity, and a refused request's entry carries its trace", async () => {
    const run = await runFixture({
      FIXTURE: 'refuse',
      K_SERVICE: 'checkout',
      K_REVISION: 'checkout-00042',
      GOOGLE_CLOUD_PROJECT: 'run-project',
      CLOUD_TASKS_EMULATOR_HOST: emulator.address,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /STATUS 401/);
    const traceId = traceIdOf(run);
    const entries = parseAll(run.stdout);
    const refused = entries.find((e) => e.message === 'refused an unauthenticated task request');
    assert.ok(refused, run.stdout.join('\n'));
    assert.equal(refused.severity, 'WARNING');
    assert.equal(refused['logging.googleapis.com/trace'], `projects/run-project/traces/${traceId}`);
    assert.equal(refused['logging.googleapis.com/spanId'], '0000000000000001');
    assert.deepEqual(refused.serviceContext, { service: 'checkout', version: 'checkout-00042' });
  });
});
