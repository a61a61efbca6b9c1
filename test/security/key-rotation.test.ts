/**
 * Key sets refresh: the emulator rotates its signing key and the next delivery is accepted after
 * one refetch (a JWKS URI behind a counting server, and the embedded default's JWKS function);
 * forged tokens naming unknown key ids cannot make the handler fetch in a loop; the TTL expires.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDeferred, type Deferred } from '../../src/index.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { eventually, recordingLogger, startApp } from '../helpers/app.js';
import { newTestKey, post, signRs256, startDualServer, type DualServer } from './harness.js';

/** Serves the emulator's JWKS (fetched from it on every request) and counts the requests. */
async function countingJwks(emulator: EmulatorHandle): Promise<{ url: string; count: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = http.createServer(async (_req, res) => {
    count += 1;
    const upstream = await fetch(emulator.jwksUri);
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/v3/certs`,
    count: () => count,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('key sets refresh on rotation', function () {
  this.timeout(60_000);

  describe('an external emulator (CLOUD_TASKS_EMULATOR_JWKS_URI)', () => {
    let emulator: EmulatorHandle;
    let jwks: Awaited<ReturnType<typeof countingJwks>>;
    let server: DualServer;
    let deferred: Deferred;
    let runs = 0;

    before(async () => {
      emulator = await startEmulator({ port: 0 });
      jwks = await countingJwks(emulator);
      server = await startDualServer();
      process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
      process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = jwks.url;
      try {
        deferred = createDeferred({ logger: recordingLogger(), queues: [{ name: 'default' }] });
        deferred.task('count', () => void (runs += 1));
        deferred.setTargetUrl(`${server.origin}${deferred.handlerPath}`);
        server.mount(deferred);
        await deferred.ready();
      } finally {
        delete process.env.CLOUD_TASKS_EMULATOR_HOST;
        delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
      }
    });
    after(async () => {
      await deferred.close();
      await server.close();
      await jwks.close();
      await emulator.stop();
    });

    it('accepts the next delivery after a rotation, with exactly one refetch', async () => {
      assert.equal(jwks.count(), 1, 'fetched once at start-up');
      assert.equal((await (await deferred.defer('count', [])).wait()).status, 'succeeded');
      assert.equal(jwks.count(), 1, 'a known key id needs no fetch');
      await emulator.rotateSigningKey();
      const info = await deferred.defer('count', []);
      const record = await info.wait({ timeoutMs: 20_000 });
      assert.equal(record.status, 'succeeded');
      assert.equal(record.attempts, 1, 'accepted on its first delivery');
      assert.equal(jwks.count(), 2, 'one refetch');
      assert.equal(runs, 2);
    });

    it('forged tokens with unknown key ids cause at most one refetch per interval', async () => {
      const fetchesBefore = jwks.count();
      const attacker = newTestKey('attacker');
      for (let i = 0; i < 40; i++) {
        const token = signRs256(
          attacker.privateKey,
          { alg: 'RS256', kid: `random-${i}` },
          { iss: 'https://accounts.google.com', aud: 'x', email: 'a@b', email_verified: true, iat: 1, exp: 2 },
        );
        const answer = await post({ host: '127.0.0.1', port: server.port, path: deferred.handlerPath }, { Authorization: `Bearer ${token}` }, '{}');
        assert.equal(answer.status, 403);
      }
      assert.ok(jwks.count() - fetchesBefore <= 1, `${jwks.count() - fetchesBefore} refetches for 40 unknown key ids`);
      assert.equal(runs, 2);
    });
  });

  it('a JWKS URI is fetched again once its TTL has passed', async () => {
    const emulator = await startEmulator({ port: 0 });
    const jwks = await countingJwks(emulator);
    const app = await startApp(
      'express',
      {
        transport: new (await import('../../src/queue/cloud-tasks.js')).CloudTasksTransport({
          client: (await import('../../src/emulator/index.js')).createEmulatorClient(emulator),
          projectId: 'local-project',
          location: 'us-central1',
        }),
        queues: [{ name: 'default' }],
        target: { serviceAccountEmail: 'tasks@local-project.iam.gserviceaccount.com' },
        auth: {
          mode: 'oidc',
          serviceAccountEmail: ['tasks@local-project.iam.gserviceaccount.com', 'other@local-project.iam.gserviceaccount.com'],
          jwks: jwks.url,
          keySet: { ttlMs: 300 },
        },
      },
      (d) => d.task('noop', () => undefined),
    );
    try {
      assert.equal((await (await app.deferred.defer('noop', [])).wait()).status, 'succeeded');
      assert.equal(jwks.count(), 1);
      await new Promise((resolve) => setTimeout(resolve, 700));
      // Another account, so the emulator signs a new token (it reuses one per account and audience).
      const second = await app.deferred.defer('noop', [], { serviceAccountEmail: 'other@local-project.iam.gserviceaccount.com' });
      assert.equal((await second.wait()).status, 'succeeded');
      assert.equal(jwks.count(), 2, 'refetched after the TTL');
    } finally {
      await app.close();
      await jwks.close();
      await emulator.stop();
    }
  });

  it('the embedded default (a JWKS function) accepts deliveries signed with a rotated key', async () => {
    let runs = 0;
    const app = await startApp('express', {}, (d) => d.task('count', () => void (runs += 1)));
    try {
      assert.equal((await (await app.deferred.defer('count', [])).wait()).status, 'succeeded');
      const firstKid = app.deferred.emulator!.jwks.keys[0]!.kid;
      await app.deferred.emulator!.rotateSigningKey();
      assert.notEqual(app.deferred.emulator!.jwks.keys[0]!.kid, firstKid);
      const record = await (await app.deferred.defer('count', [])).wait({ timeoutMs: 20_000 });
      assert.equal(record.status, 'succeeded');
      assert.equal(record.attempts, 1, 'accepted on its first delivery');
      await eventually(() => runs === 2, 'two runs');
    } finally {
      await app.close();
    }
  });
});
