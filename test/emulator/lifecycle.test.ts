/** Starting and stopping emulators, the client helper, the clock discipline, and the CLI. */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { status } from '@grpc/grpc-js';
import { createEmulatorClient, ManualClock, parseEmulatorAddress, startEmulator } from '../../src/emulator/index.js';
import { assertGrpcError, PARENT, queuePath, seconds, startTestContext, uniqueQueueId } from './helpers.js';

describe('emulator: lifecycle', () => {
  it('starts on a free port, serves the client, and stop() closes gRPC and the JWKS server', async () => {
    const emulator = await startEmulator();
    assert.equal(emulator.host, '127.0.0.1');
    assert.ok(emulator.port > 0);
    assert.equal(emulator.address, `127.0.0.1:${emulator.port}`);
    assert.equal(emulator.issuer, 'https://accounts.google.com');
    assert.match(emulator.jwksUri, /^http:\/\/127\.0\.0\.1:\d+\/oauth2\/v3\/certs$/);
    assert.equal((await fetch(emulator.jwksUri)).status, 200);

    const client = createEmulatorClient(emulator.address);
    const [queue] = await client.createQueue({ parent: PARENT, queue: { name: queuePath('lifecycle') } });
    assert.equal(queue.state, 'RUNNING');
    await emulator.stop();
    await emulator.stop(); // idempotent
    await assert.rejects(fetch(emulator.jwksUri));
    await assertGrpcError(client.getQueue({ name: queuePath('lifecycle') }, { timeout: 2000, retry: null }), status.UNAVAILABLE);
    await client.close();
  });

  it('starts and stops many emulators in one process', async () => {
    const ports = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const ctx = await startTestContext();
      ports.add(ctx.emulator.port);
      const name = queuePath(uniqueQueueId());
      await ctx.client.createQueue({ parent: PARENT, queue: { name } });
      await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url() } } });
      await ctx.target.waitForRequests(1);
      await ctx.close();
    }
    assert.equal(ports.size, 5);
  });

  it('stops cleanly with tasks scheduled and an attempt under way', async () => {
    const ctx = await startTestContext();
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    ctx.target.responder = () => new Promise(() => {}); // never answers
    await ctx.client.createTask({ parent: name, task: { httpRequest: { url: ctx.target.url('/hang') } } });
    await ctx.client.createTask({
      parent: name,
      task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds(ctx.clock.now() / 1000 + 3600) },
    });
    await ctx.target.waitForRequests(1);
    await ctx.close();
    assert.equal(ctx.clock.armedTimers, 0, 'no timer left armed');
    await ctx.emulator.idle(); // resolves once stopped
  });

  it('keeps a single timer armed however many tasks are scheduled', async () => {
    const ctx = await startTestContext();
    try {
      const name = queuePath(uniqueQueueId());
      await ctx.client.createQueue({ parent: PARENT, queue: { name } });
      const now = ctx.clock.now();
      for (let i = 0; i < 200; i++) {
        await ctx.client.createTask({
          parent: name,
          task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds((now + 60_000 + (i % 17) * 1000) / 1000) },
        });
      }
      assert.equal(ctx.clock.armedTimers, 1);
      await ctx.clock.advance(120_000);
      await ctx.emulator.idle();
      assert.equal(ctx.target.requests.length, 200);
      const arrivals = ctx.target.requests.map((r) => r.receivedAt - now);
      assert.deepEqual(
        [...arrivals].sort((a, b) => a - b),
        arrivals,
        'dispatched in schedule order',
      );
    } finally {
      await ctx.close();
    }
  });

  it('ManualClock fires timers in order at their due time', async () => {
    const clock = new ManualClock(1_000);
    const fired: Array<[string, number]> = [];
    clock.setTimer(() => fired.push(['b', clock.now()]), 200);
    clock.setTimer(() => fired.push(['a', clock.now()]), 100);
    const cancelled = clock.setTimer(() => fired.push(['x', clock.now()]), 150);
    cancelled.cancel();
    await clock.advance(150);
    assert.deepEqual(fired, [['a', 1_100]]);
    assert.equal(clock.now(), 1_150);
    await clock.set(5_000);
    assert.deepEqual(fired, [
      ['a', 1_100],
      ['b', 1_200],
    ]);
    assert.equal(clock.now(), 5_000);
  });

  it('parses emulator addresses, IPv6 included', () => {
    assert.deepEqual(parseEmulatorAddress('localhost:8123'), { host: 'localhost', port: 8123 });
    assert.deepEqual(parseEmulatorAddress('[::1]:9000'), { host: '::1', port: 9000 });
    assert.throws(() => parseEmulatorAddress('no-port'));
  });

  describe('CLI: cloud-defer emulator', () => {
    it('prints CLOUD_TASKS_EMULATOR_HOST and the JWKS URI, serves the client, and exits on SIGTERM', async function () {
      // The compiled CLI of this same build (dist/ may be stale or absent when only tests were compiled).
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
          'cli-project',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const lines = readline.createInterface({ input: child.stdout! });
        const printed: Record<string, string> = {};
        for await (const line of lines) {
          const [key, value] = line.split(/=(.*)/s, 2);
          if (key && value) printed[key] = value;
          if (printed['CLOUD_TASKS_EMULATOR_HOST'] && printed['CLOUD_TASKS_EMULATOR_JWKS_URI']) break;
        }
        assert.match(printed['CLOUD_TASKS_EMULATOR_HOST'] ?? '', /^127\.0\.0\.1:\d+$/);
        const jwks = (await (await fetch(printed['CLOUD_TASKS_EMULATOR_JWKS_URI']!)).json()) as { keys: unknown[] };
        assert.equal(jwks.keys.length, 1);

        const client = createEmulatorClient(printed['CLOUD_TASKS_EMULATOR_HOST']!);
        const parent = 'projects/cli-project/locations/us-central1';
        const [queue] = await client.createQueue({ parent, queue: { name: `${parent}/queues/from-cli` } });
        assert.equal(queue.name, `${parent}/queues/from-cli`);
        await client.close();
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0);
    });

    it('refuses unknown options', async () => {
      const { main } = await import('../../src/cli.js');
      await assert.rejects(main(['emulator', '--bogus']), /unknown option --bogus/);
      await assert.rejects(main(['nope']), /unknown command "nope"/);
    });
  });
});
