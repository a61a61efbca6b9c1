/**
 * Forged deliveries, as an attacker next to the app (a same-host proxy or a mesh sidecar makes
 * every request loopback) would send them: 15 kinds of token x 3 header placements, plus requests
 * with no token from 127.0.0.1, 127.0.0.2, ::1, with X-Forwarded-For, and with App Engine headers
 * only. In each mode (embedded emulator, external emulator, OIDC, App Engine) every one is refused,
 * nothing runs, no record is created or changed and no stored payload is touched. A genuine
 * delivery still runs in each mode, so the refusals are the authentication's doing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createDeferred, type Deferred } from '../../src/index.js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { eventually, recordingLogger } from '../helpers/app.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import {
  newTestKey,
  pemOfJwk,
  post,
  signHs256WithPublicKey,
  signRs256,
  snapshot,
  startDualServer,
  tamper,
  unsignedToken,
  type DualServer,
  type TestKey,
} from './harness.js';

const SA = 'cloud-defer-tasks@local-project.iam.gserviceaccount.com';
const ATTACKER_SA = 'mallory@evil-project.iam.gserviceaccount.com';
const HANDLER = '/_ah/queue/deferred';
const now = (): number => Math.floor(Date.now() / 1000);

/** What each mode gives the matrix. */
interface ModeUnderTest {
  deferred: Deferred;
  server: DualServer;
  handlerUrl: string;
  /** The kid and public JWK the handler trusts (for kid spoofing and alg confusion). */
  trustedKid: string;
  trustedJwk: Record<string, unknown>;
  /** A token the handler accepts. */
  genuine(): Promise<string>;
  /** Signed by the trusted key with these claims, when the test holds that key (OIDC mode). */
  trustedSign?: (claims: Record<string, unknown>) => string;
  /** Signed by the emulator for another audience / account (emulator modes). */
  emulatorToken?: (options: { audience?: string; serviceAccountEmail?: string }) => Promise<string>;
  /** Deliveries are proved by X-AppEngine-* headers (App Engine mode). */
  appEngine?: boolean;
  close(): Promise<void>;
}

let runs: string[] = [];

function register(deferred: Deferred): void {
  deferred.task('greet', (name: string) => {
    runs.push(name);
  });
  deferred.task('victim', (blob: string) => {
    runs.push(`victim:${blob.length}`);
  });
}

/** Captures emulator-signed tokens by delivering a task to a recorder instead of the app. */
function emulatorTokens(deferred: Deferred, recorder: Recorder, handlerUrl: string) {
  return async (options: { audience?: string; serviceAccountEmail?: string } = {}): Promise<string> => {
    const before = recorder.requests.length;
    await deferred.defer('greet', ['capture'], { url: recorder.url, audience: handlerUrl, ...options });
    const captured = await eventually(() => recorder.requests[before], 'a captured delivery');
    return String(captured.headers.authorization).replace(/^Bearer /, '');
  };
}

async function embeddedMode(): Promise<ModeUnderTest> {
  const server = await startDualServer();
  const recorder = await startRecorder();
  const deferred = createDeferred({ logger: recordingLogger(), queues: [{ name: 'held' }] });
  register(deferred);
  const handlerUrl = `${server.origin}${HANDLER}`;
  deferred.setTargetUrl(handlerUrl);
  server.mount(deferred);
  await deferred.ready();
  const tokens = emulatorTokens(deferred, recorder, handlerUrl);
  const jwk = deferred.emulator!.jwks.keys[0]!;
  return {
    deferred,
    server,
    handlerUrl,
    trustedKid: jwk.kid,
    trustedJwk: jwk as unknown as Record<string, unknown>,
    genuine: () => tokens(),
    emulatorToken: tokens,
    async close() {
      await deferred.close();
      await recorder.close();
      await server.close();
    },
  };
}

async function externalEmulatorMode(): Promise<ModeUnderTest> {
  const server = await startDualServer();
  const recorder = await startRecorder();
  const emulator = await startEmulator({ port: 0 });
  process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
  process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = emulator.jwksUri;
  let deferred: Deferred;
  try {
    deferred = createDeferred({ logger: recordingLogger(), queues: [{ name: 'held' }, { name: 'default' }] });
  } finally {
    delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
  }
  assert.equal(deferred.mode, 'emulator');
  register(deferred);
  const handlerUrl = `${server.origin}${HANDLER}`;
  deferred.setTargetUrl(handlerUrl);
  server.mount(deferred);
  process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
  try {
    await deferred.ready();
  } finally {
    delete process.env.CLOUD_TASKS_EMULATOR_HOST;
  }
  const tokens = emulatorTokens(deferred, recorder, handlerUrl);
  const jwk = emulator.jwks.keys[0]!;
  return {
    deferred,
    server,
    handlerUrl,
    trustedKid: jwk.kid,
    trustedJwk: jwk as unknown as Record<string, unknown>,
    genuine: () => tokens(),
    emulatorToken: tokens,
    async close() {
      await deferred.close();
      await emulator.stop();
      await recorder.close();
      await server.close();
    },
  };
}

/** OIDC against a key set the test holds the private key of, standing in for Google's. */
async function oidcMode(): Promise<ModeUnderTest & { emulator: EmulatorHandle }> {
  const server = await startDualServer();
  const emulator = await startEmulator({ port: 0 });
  const trusted = newTestKey('google-key-1');
  const handlerUrl = `${server.origin}${HANDLER}`;
  const deferred = createDeferred({
    logger: recordingLogger(),
    transport: new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }),
    queues: [{ name: 'held' }, { name: 'default' }],
    target: { url: handlerUrl, serviceAccountEmail: SA },
    // The emulator's key is trusted too, so its dispatches play Google's genuine ones.
    auth: { mode: 'oidc', serviceAccountEmail: SA, jwks: { keys: [trusted.jwk, ...emulator.jwks.keys] } },
  });
  register(deferred);
  server.mount(deferred);
  await deferred.ready();
  const trustedSign = (claims: Record<string, unknown>): string => signRs256(trusted.privateKey, { alg: 'RS256', kid: trusted.kid }, claims);
  return {
    deferred,
    server,
    emulator,
    handlerUrl,
    trustedKid: trusted.kid,
    trustedJwk: trusted.jwk,
    trustedSign,
    genuine: async () => trustedSign(goodClaims(handlerUrl)),
    async close() {
      await deferred.close();
      await emulator.stop();
      await server.close();
    },
  };
}

async function appEngineMode(): Promise<ModeUnderTest> {
  const server = await startDualServer();
  const emulator = await startEmulator({ port: 0, appEngineBaseUrl: server.origin });
  const saved = process.env.GAE_ENV;
  process.env.GAE_ENV = 'standard';
  let deferred: Deferred;
  try {
    deferred = createDeferred({
      logger: recordingLogger(),
      transport: new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }),
      queues: [{ name: 'held' }, { name: 'default' }],
      target: { appEngine: {} },
    });
  } finally {
    if (saved === undefined) delete process.env.GAE_ENV;
    else process.env.GAE_ENV = saved;
  }
  register(deferred);
  server.mount(deferred);
  await deferred.ready();
  const jwk = emulator.jwks.keys[0]!;
  return {
    deferred,
    server,
    handlerUrl: `${server.origin}${HANDLER}`,
    trustedKid: jwk.kid,
    trustedJwk: jwk as unknown as Record<string, unknown>,
    genuine: async () => '',
    appEngine: true,
    async close() {
      await deferred.close();
      await emulator.stop();
      await server.close();
    },
  };
}

function goodClaims(audience: string): Record<string, unknown> {
  return { iss: 'https://accounts.google.com', aud: audience, sub: '1234567890', email: SA, email_verified: true, iat: now() - 10, exp: now() + 3600 };
}

type TokenCase = { name: string; make(mode: ModeUnderTest, attacker: TestKey): Promise<string | undefined> };

/** Signed with the trusted key when the test has it (OIDC mode), else by an attacker under the trusted kid. */
async function trustedOrSpoofed(mode: ModeUnderTest, attacker: TestKey, claims: Record<string, unknown>): Promise<string> {
  return mode.trustedSign ? mode.trustedSign(claims) : signRs256(attacker.privateKey, { alg: 'RS256', kid: mode.trustedKid }, claims);
}

const TOKEN_CASES: TokenCase[] = [
  { name: 'no token', make: async () => undefined },
  { name: 'not a JWT', make: async () => 'not.a-jwt' },
  { name: 'another key, its own kid', make: async (m, a) => signRs256(a.privateKey, { alg: 'RS256', kid: a.kid }, goodClaims(m.handlerUrl)) },
  { name: 'another key under the trusted kid', make: async (m, a) => signRs256(a.privateKey, { alg: 'RS256', kid: m.trustedKid }, goodClaims(m.handlerUrl)) },
  {
    name: 'wrong audience',
    make: async (m, a) =>
      m.emulatorToken
        ? m.emulatorToken({ audience: 'https://elsewhere.example/_ah/queue/deferred' })
        : trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), aud: 'https://elsewhere.example/' }),
  },
  {
    name: 'wrong service account',
    make: async (m, a) =>
      m.emulatorToken ? m.emulatorToken({ serviceAccountEmail: ATTACKER_SA }) : trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), email: ATTACKER_SA }),
  },
  { name: 'email_verified false', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), email_verified: false }) },
  { name: 'no email', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), email: undefined }) },
  { name: 'expired past the 300 s skew', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), iat: now() - 7200, exp: now() - 3600 }) },
  { name: 'another issuer', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), iss: 'https://evil.example' }) },
  { name: 'nbf in the future', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), nbf: now() + 3600 }) },
  { name: 'iat in the future', make: async (m, a) => trustedOrSpoofed(m, a, { ...goodClaims(m.handlerUrl), iat: now() + 3600, exp: now() + 7200 }) },
  { name: 'alg none', make: async (m) => unsignedToken(m.trustedKid, goodClaims(m.handlerUrl)) },
  {
    name: 'alg confusion: HS256 keyed with the public key',
    make: async (m) => signHs256WithPublicKey(pemOfJwk(m.trustedJwk), m.trustedKid, goodClaims(m.handlerUrl)),
  },
  {
    name: 'a genuine token with its claims changed',
    make: async (m, a) => {
      const genuine = m.appEngine ? await trustedOrSpoofed(m, a, goodClaims(m.handlerUrl)) : await m.genuine();
      return tamper(genuine, (c) => ({ ...c, email: ATTACKER_SA, aud: m.handlerUrl }));
    },
  },
];

const PLACEMENTS = ['Authorization', 'X-Serverless-Authorization', 'both'] as const;

function tokenHeaders(token: string | undefined, placement: (typeof PLACEMENTS)[number]): Record<string, string> {
  if (token === undefined) {
    // Without a token the placements are: nothing, an empty Bearer, another scheme.
    if (placement === 'Authorization') return {};
    if (placement === 'X-Serverless-Authorization') return { 'X-Serverless-Authorization': 'Bearer ' };
    return { Authorization: 'Basic bWFsbG9yeTpzZWNyZXQ=', 'X-Serverless-Authorization': 'Basic bWFsbG9yeQ==' };
  }
  const value = `Bearer ${token}`;
  if (placement === 'both') return { Authorization: value, 'X-Serverless-Authorization': value };
  return { [placement]: value };
}

interface Seeded {
  pendingId: string;
  victimId: string;
}

/** A held task with small args and one with a stored payload: what forged envelopes aim at. */
async function seed(deferred: Deferred): Promise<Seeded> {
  await deferred.pauseQueue('held');
  const pending = await deferred.defer('greet', ['alice'], { queue: 'held' });
  const victim = await deferred.defer('victim', ['x'.repeat(200 * 1024)], { queue: 'held' });
  return { pendingId: pending.id, victimId: victim.id };
}

/** The forged bodies: a new id, an existing record's id with other args, another task's payload. */
function forgedBodies(seeded: Seeded): string[] {
  return [
    JSON.stringify({ v: 1, task: 'greet', id: `forged-${randomUUID()}`, args: ['mallory'] }),
    JSON.stringify({ v: 1, task: 'greet', id: seeded.pendingId, args: ['mallory'] }),
    JSON.stringify({ v: 1, task: 'victim', id: `forged-${randomUUID()}`, payloadRef: seeded.victimId }),
  ];
}

const forgedTaskHeaders = (i: number): Record<string, string> => ({
  'X-CloudTasks-QueueName': 'default',
  'X-CloudTasks-TaskName': `forged-${i}`,
  'X-CloudTasks-TaskRetryCount': '0',
  'X-CloudTasks-TaskExecutionCount': '0',
  'User-Agent': 'Google-Cloud-Tasks',
});

const MODES: Array<[string, () => Promise<ModeUnderTest>]> = [
  ['embedded emulator', embeddedMode],
  ['external emulator (CLOUD_TASKS_EMULATOR_HOST)', externalEmulatorMode],
  ['OIDC', oidcMode],
  ['App Engine (GAE_ENV)', appEngineMode],
];

for (const [label, start] of MODES) {
  describe(`forged deliveries: ${label}`, function () {
    this.timeout(120_000);
    let mode: ModeUnderTest;
    let seeded: Seeded;
    const attacker = newTestKey('attacker-key');

    before(async () => {
      runs = [];
      mode = await start();
      seeded = await seed(mode.deferred);
    });
    after(async () => {
      await mode.close();
    });

    it('refuses all 45 token cases and the 5 network variants: nothing runs, nothing is recorded', async () => {
      const tokens = new Map<string, string | undefined>();
      for (const tokenCase of TOKEN_CASES) tokens.set(tokenCase.name, await tokenCase.make(mode, attacker));
      const before = await snapshot(mode.deferred);
      const bodies = forgedBodies(seeded);
      const port = mode.server.port;
      const loopback = { host: '127.0.0.1', port, path: HANDLER };
      const attempts: Array<{ what: string; target: Parameters<typeof post>[0]; headers: Record<string, string> }> = [];
      for (const tokenCase of TOKEN_CASES) {
        for (const placement of PLACEMENTS) {
          attempts.push({ what: `${tokenCase.name} in ${placement}`, target: loopback, headers: tokenHeaders(tokens.get(tokenCase.name), placement) });
        }
      }
      assert.equal(attempts.length, 45);
      attempts.push({ what: 'no token from 127.0.0.1', target: loopback, headers: {} });
      attempts.push({ what: 'no token from 127.0.0.2', target: { ...loopback, localAddress: '127.0.0.2' }, headers: {} });
      attempts.push({ what: 'no token from ::1', target: { host: '::1', port, path: HANDLER }, headers: {} });
      attempts.push({ what: 'X-Forwarded-For: 127.0.0.1', target: loopback, headers: { 'X-Forwarded-For': '127.0.0.1', Forwarded: 'for=127.0.0.1' } });
      if (!mode.appEngine) {
        // On App Engine these headers are the proof (App Engine strips them from outside requests).
        attempts.push({
          what: 'X-AppEngine-* headers only',
          target: loopback,
          headers: { 'X-AppEngine-QueueName': 'default', 'X-AppEngine-TaskName': 'forged', 'X-AppEngine-TaskRetryCount': '0' },
        });
      }

      let i = 0;
      for (const attempt of attempts) {
        for (const body of bodies) {
          const headers = { ...forgedTaskHeaders(i++), ...attempt.headers };
          const answer = await post(attempt.target, headers, body);
          assert.ok(answer.status === 401 || answer.status === 403, `${attempt.what}: answered ${answer.status} ${answer.body}`);
          assert.equal(answer.headers.connection, 'close', `${attempt.what}: the refusal closes the connection`);
        }
      }

      // The sweep path (Cloud Scheduler) is guarded the same way.
      for (const attempt of attempts.slice(45)) {
        const answer = await post({ ...attempt.target, path: '/_ah/deferred/sweep' }, attempt.headers, '');
        assert.ok(answer.status === 401 || answer.status === 403, `sweep, ${attempt.what}: answered ${answer.status}`);
      }

      assert.deepEqual(runs, [], 'nothing ran');
      const after = await snapshot(mode.deferred);
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no record created or removed');
      for (const [id, record] of before) {
        const now = after.get(id)!;
        assert.equal(now.status, record.status, `record ${id} status`);
        assert.equal(now.attempts, record.attempts, `record ${id} attempts`);
        assert.equal(now.history.length, record.history.length, `record ${id} history`);
        assert.equal(now.version, record.version, `record ${id} unchanged`);
      }
      assert.ok(await mode.deferred.stores.payloads.get(seeded.victimId), "the other task's stored payload is still there");
    });

    it('still runs a genuine delivery, with the arguments of its record', async () => {
      await mode.deferred.resumeQueue('held');
      const pending = await eventually(
        async () => {
          const r = await mode.deferred.getTask(seeded.pendingId);
          return r?.status === 'succeeded' ? r : undefined;
        },
        'the held task to run',
        20_000,
      );
      assert.equal(pending.attempts, 1);
      assert.ok(runs.includes('alice'), 'ran with its own arguments');
      assert.ok(!runs.includes('mallory'));
    });
  });
}
