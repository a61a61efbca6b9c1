/**
 * Who may run tasks: OIDC tokens verified with google-auth-library (signature, issuer, audience,
 * service account, expiry), Cloud Run's X-Serverless-Authorization, App Engine headers, and the
 * production guard. Forged requests run nothing and record nothing.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign } from 'node:crypto';
import request from 'supertest';
import { createDeferred, CloudDeferError } from '../../src/index.js';
import { ManualClock } from '../../src/emulator/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { startRecorder, type Recorder, type RecordedRequest } from '../helpers/recorder.js';

function forgeToken(claims: Record<string, unknown>): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'forged' })}.${b64(claims)}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(privateKey).toString('base64url');
  return `${unsigned}.${signature}`;
}

describe('task handler authentication', () => {
  let app: TestApp;
  let recorder: Recorder;
  let runs = 0;

  before(async () => {
    recorder = await startRecorder();
    app = await startApp('express', {}, (deferred) => {
      deferred.task('count', () => {
        runs += 1;
      });
    });
  });
  after(async () => {
    await app.close();
    await recorder.close();
  });

  /** Defers a task whose delivery goes to the recorder, to get a real emulator-signed request. */
  async function capture(options: { audience?: string; serviceAccountEmail?: string } = {}): Promise<{ id: string; request: RecordedRequest }> {
    const before = recorder.requests.length;
    const info = await app.deferred.defer('count', [], { url: recorder.url, audience: app.handlerUrl, ...options });
    const captured = await eventually(() => recorder.requests[before], 'the captured delivery');
    return { id: info.id, request: captured };
  }

  const taskHeaders = (r: RecordedRequest): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) if (k.startsWith('x-cloudtasks-') && typeof v === 'string') out[k] = v;
    return out;
  };

  it('answers 405 with Allow: POST to other methods', async () => {
    const res = await request(app.server).get(app.deferred.handlerPath);
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST');
  });

  it('refuses a request without a token (401) and runs and records nothing', async () => {
    const { id, request: real } = await capture();
    const res = await request(app.server).post(app.deferred.handlerPath).set(taskHeaders(real)).send(real.body);
    assert.equal(res.status, 401);
    const record = await app.deferred.getTask(id);
    assert.equal(record?.status, 'queued');
    assert.equal(record?.attempts, 0);
    assert.equal(runs, 0);
  });

  it('refuses a token signed by another key, for another audience or another service account (403)', async () => {
    const { id, request: real } = await capture();
    const forged = forgeToken({
      iss: 'https://accounts.google.com',
      aud: app.handlerUrl,
      email: 'cloud-defer-tasks@local-project.iam.gserviceaccount.com',
      email_verified: true,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 3600,
    });
    const wrongKey = await request(app.server).post(app.deferred.handlerPath).set(taskHeaders(real)).set('Authorization', `Bearer ${forged}`).send(real.body);
    assert.equal(wrongKey.status, 403);

    const otherAudience = await capture({ audience: 'https://somewhere-else.example' });
    const res2 = await request(app.server)
      .post(app.deferred.handlerPath)
      .set(taskHeaders(otherAudience.request))
      .set('Authorization', String(otherAudience.request.headers.authorization))
      .send(otherAudience.request.body);
    assert.equal(res2.status, 403);

    const otherAccount = await capture({ serviceAccountEmail: 'intruder@evil-project.iam.gserviceaccount.com' });
    const res3 = await request(app.server)
      .post(app.deferred.handlerPath)
      .set(taskHeaders(otherAccount.request))
      .set('Authorization', String(otherAccount.request.headers.authorization))
      .send(otherAccount.request.body);
    assert.equal(res3.status, 403);

    for (const taskId of [id, otherAudience.id, otherAccount.id]) {
      assert.equal((await app.deferred.getTask(taskId))?.attempts, 0, 'nothing recorded');
    }
    assert.equal(runs, 0);
  });

  it('accepts the real token, also in X-Serverless-Authorization (Cloud Run), and runs once', async () => {
    const { id, request: real } = await capture();
    const res = await request(app.server)
      .post(app.deferred.handlerPath)
      .set(taskHeaders(real))
      .set('X-Serverless-Authorization', String(real.headers.authorization))
      .send(real.body);
    assert.equal(res.status, 200);
    assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
    assert.equal(runs, 1);
    const again = await request(app.server)
      .post(app.deferred.handlerPath)
      .set(taskHeaders(real))
      .set('Authorization', String(real.headers.authorization))
      .send(real.body);
    assert.equal(again.status, 200, 'a duplicate delivery is acknowledged');
    assert.equal(runs, 1, 'and not run again');
  });

  it('refuses an oversized body with 413', async () => {
    const { request: real } = await capture();
    const res = await request(app.server)
      .post(app.deferred.handlerPath)
      .set(taskHeaders(real))
      .set('Authorization', String(real.headers.authorization))
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.alloc(2 * 1024 * 1024));
    assert.equal(res.status, 413);
  });

  it('refuses an expired token', async () => {
    const past = new ManualClock(Date.now() - 2 * 3600_000);
    const local = await startRecorder();
    const stale = await startApp('express', { emulator: { clock: past } }, (d) => d.task('count', () => undefined));
    try {
      await stale.deferred.defer('count', [], { url: local.url, audience: stale.handlerUrl });
      const real = await eventually(() => local.requests[0], 'the delivery');
      const res = await request(stale.server)
        .post(stale.deferred.handlerPath)
        .set(taskHeaders(real))
        .set('Authorization', String(real.headers.authorization))
        .send(real.body);
      assert.equal(res.status, 403);
    } finally {
      await stale.close();
      await local.close();
    }
  });
});

describe('authentication modes and the production guard', () => {
  const saved = { K_SERVICE: process.env.K_SERVICE, GAE_ENV: process.env.GAE_ENV };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('on Cloud Run (K_SERVICE) refuses to start without a safe authentication mode', () => {
    process.env.K_SERVICE = 'my-service';
    assert.throws(
      () => createDeferred({ logger: false }),
      (err: unknown) => err instanceof CloudDeferError && err.code === 'UNSAFE_CONFIGURATION',
    );
    assert.throws(() => createDeferred({ logger: false, auth: { mode: 'none' } }), { code: 'UNSAFE_CONFIGURATION' });
    assert.throws(() => createDeferred({ logger: false, auth: { mode: 'appEngine' } }), { code: 'UNSAFE_CONFIGURATION' });
    const ok = createDeferred({
      logger: false,
      target: { url: 'https://svc.run.app/_ah/queue/deferred', serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com' },
    });
    assert.equal(ok.mode, 'cloud');
  });

  it('on App Engine (GAE_ENV) the App Engine header mode is the safe default', async () => {
    process.env.GAE_ENV = 'standard';
    const deferred = createDeferred({ logger: false, target: { appEngine: {} } });
    assert.equal(deferred.mode, 'cloud');
    const middleware = (await import('../../src/index.js')).deferredMiddleware(deferred);
    const express = (await import('express')).default;
    const app = express();
    app.use(middleware);
    const forged = await request(app).post(deferred.handlerPath).send('{}');
    assert.equal(forged.status, 403, 'no X-AppEngine-* headers: not from Cloud Tasks');
    const fromQueue = await request(app)
      .post(deferred.handlerPath)
      .set('X-AppEngine-QueueName', 'default')
      .set('X-AppEngine-TaskName', '123')
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.from('not an envelope'));
    assert.equal(fromQueue.status, 200, 'an undecodable envelope is acknowledged, never retried');
  });
});

describe('the record is the authority', () => {
  let app: TestApp;
  let recorder: Recorder;
  let token: string;
  const ran: string[] = [];

  before(async () => {
    recorder = await startRecorder();
    app = await startApp('express', { queues: [{ name: 'held' }] }, (deferred) => {
      deferred.task('greet', (name: string) => void ran.push(name));
      deferred.task('store', (blob: string) => void ran.push(`store:${blob.length}`));
    });
    await app.deferred.pauseQueue('held');
    await app.deferred.defer('greet', ['token'], { url: recorder.url, audience: app.handlerUrl });
    token = String((await eventually(() => recorder.requests[0], 'a signed delivery')).headers.authorization);
  });
  after(async () => {
    await app.close();
    await recorder.close();
  });
  beforeEach(() => {
    ran.length = 0;
  });

  const deliver = (body: string, headers: Record<string, string> = {}) =>
    request(app.server)
      .post(app.deferred.handlerPath)
      .set('Authorization', token)
      .set('X-CloudTasks-QueueName', 'held')
      .set('Content-Type', 'application/octet-stream')
      .set(headers)
      .send(Buffer.from(body));

  it('an authenticated envelope that disagrees with its record is refused and logged, and the real task still runs with its own arguments', async () => {
    const info = await app.deferred.defer('greet', ['alice'], { queue: 'held' });
    for (const forged of [
      { v: 1, task: 'greet', id: info.id, args: ['mallory'] },
      { v: 1, task: 'store', id: info.id, args: ['alice'] },
      { v: 1, task: 'greet', id: info.id, payloadRef: info.id },
    ]) {
      const res = await deliver(JSON.stringify(forged));
      assert.equal(res.status, 200, 'acknowledged, so the queue drops it');
      assert.match(res.text, /Refused \(ENVELOPE_MISMATCH\)/);
    }
    assert.deepEqual(ran, [], 'nothing ran');
    const record = await app.deferred.getTask(info.id);
    assert.equal(record?.lastError?.code, 'INVALID_ENVELOPE');
    assert.ok(app.logger.lines.some((l) => l.level === 'error' && /disagrees with task record/.test(l.message)));
    await app.deferred.resumeQueue('held');
    const settled = await eventually(async () => {
      const r = await app.deferred.getTask(info.id);
      return r?.status === 'succeeded' ? r : undefined;
    }, 'the genuine delivery');
    assert.equal(settled.taskName, 'greet');
    assert.deepEqual(ran, ['alice']);
    await app.deferred.pauseQueue('held');
  });

  it("an envelope pointing at another task's stored payload runs nothing and leaves the payload in place", async () => {
    const victim = await app.deferred.defer('store', ['x'.repeat(150 * 1024)], { queue: 'held' });
    const forgedId = `forged-${victim.id}`;
    const res = await deliver(JSON.stringify({ v: 1, task: 'store', id: forgedId, payloadRef: victim.id }));
    assert.equal(res.status, 200);
    assert.match(res.text, /Refused/);
    assert.deepEqual(ran, []);
    assert.equal(await app.deferred.getTask(forgedId), undefined, 'no record made');
    assert.ok(await app.deferred.stores.payloads.get(victim.id), 'the payload is still stored');
  });

  it('with auth "none" (asked for explicitly) a delivery without a record is refused: no rebuild without real authentication', async () => {
    const open = await startApp('express', { mode: 'embedded', auth: { mode: 'none' } }, (d) => d.task('greet', (name: string) => void ran.push(name)));
    try {
      const id = 'no-such-record';
      const res = await request(open.server)
        .post(open.deferred.handlerPath)
        .set('X-AppEngine-QueueName', 'default')
        .set('X-AppEngine-TaskName', 'forged')
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from(JSON.stringify({ v: 1, task: 'greet', id, args: ['mallory'] })));
      assert.equal(res.status, 200);
      assert.match(res.text, /Refused \(NO_RECORD\)/);
      assert.deepEqual(ran, []);
      assert.equal(await open.deferred.getTask(id), undefined);
      assert.ok(
        open.logger.lines.some((l) => l.level === 'warn' && /auth mode "none"/.test(l.message)),
        'the start-up says so',
      );
    } finally {
      await open.close();
    }
  });

  it('a verified delivery for an expired record still runs (the record is rebuilt from the envelope)', async () => {
    const id = `expired-${Date.now()}`;
    const res = await deliver(JSON.stringify({ v: 1, task: 'greet', id, args: ['late'] }));
    assert.equal(res.status, 200);
    assert.deepEqual(ran, ['late']);
    assert.equal((await app.deferred.getTask(id))?.status, 'succeeded');
  });
});

describe('Host check on the embedded handler (DNS rebinding)', () => {
  let app: TestApp;
  let recorder: Recorder;
  let token: string;
  let runs = 0;

  before(async () => {
    recorder = await startRecorder();
    app = await startApp('express', { allowedHosts: ['dev.internal.test'] }, (d) => d.task('count', () => void (runs += 1)));
    await app.deferred.defer('count', [], { url: recorder.url, audience: app.handlerUrl });
    token = String((await eventually(() => recorder.requests[0], 'a signed delivery')).headers.authorization);
  });
  after(async () => {
    await app.close();
    await recorder.close();
  });

  async function deliverAs(host: string): Promise<request.Response> {
    const info = await app.deferred.defer('count', [], { url: recorder.url, audience: app.handlerUrl });
    const body = JSON.stringify({ v: 1, task: 'count', id: info.id, args: [] });
    return request(app.server)
      .post(app.deferred.handlerPath)
      .set('Host', host)
      .set('Authorization', token)
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.from(body));
  }

  it('refuses another Host with 403 even with a valid token, and runs nothing', async () => {
    const port = new URL(app.baseUrl).port;
    for (const host of [`rebind.attacker.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`, '']) {
      const res = await deliverAs(host);
      assert.equal(res.status, 403, `Host: ${host}`);
      assert.equal(res.headers.connection, 'close');
    }
    assert.equal(runs, 0);
  });

  it('serves loopback literals, localhost, the target URL host and allowedHosts', async () => {
    const port = new URL(app.baseUrl).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `127.0.0.2:${port}`, 'dev.internal.test:8080']) {
      const res = await deliverAs(host);
      assert.equal(res.status, 200, `Host: ${host}: ${res.text}`);
    }
    assert.equal(runs, 5);
  });
});
