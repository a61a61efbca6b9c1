/**
 * The start-up matrix (README, "Authentication and IAM"): each environment x each configuration
 * either starts in the mode the table says or refuses with UNSAFE_CONFIGURATION and a message that
 * says what to set. The embedded default is picked only on a developer's machine.
 */
import assert from 'node:assert/strict';
import { createDeferred, CloudDeferError, type CreateDeferredOptions } from '../../src/index.js';
import { startEmulator } from '../../src/emulator/index.js';

const VARIABLES = [
  'NODE_ENV',
  'K_SERVICE',
  'GAE_ENV',
  'KUBERNETES_SERVICE_HOST',
  'CLOUD_RUN_JOB',
  'CLOUD_TASKS_EMULATOR_HOST',
  'CLOUD_TASKS_EMULATOR_JWKS_URI',
];

const ENVIRONMENTS: Record<string, Record<string, string>> = {
  developer: {},
  'NODE_ENV=production': { NODE_ENV: 'production' },
  KUBERNETES_SERVICE_HOST: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
  CLOUD_RUN_JOB: { CLOUD_RUN_JOB: 'nightly' },
  K_SERVICE: { K_SERVICE: 'my-service' },
  GAE_ENV: { GAE_ENV: 'standard' },
};
type Env = keyof typeof ENVIRONMENTS;

const URL_TARGET = { url: 'https://svc.example.run.app/_ah/queue/deferred', serviceAccountEmail: 'tasks@p.iam.gserviceaccount.com' };
const EMULATOR = { CLOUD_TASKS_EMULATOR_HOST: '127.0.0.1:8123', CLOUD_TASKS_EMULATOR_JWKS_URI: 'http://127.0.0.1:8124/oauth2/v3/certs' };

type Outcome = 'embedded' | 'emulator' | 'cloud' | 'UNSAFE';

interface Row {
  config: string;
  options: CreateDeferredOptions;
  /** Extra variables this configuration sets. */
  env?: Record<string, string>;
  expect: Record<Env, Outcome>;
}

const U = 'UNSAFE' as const;
const everywhere = (outcome: Outcome): Record<Env, Outcome> => ({
  developer: outcome,
  'NODE_ENV=production': outcome,
  KUBERNETES_SERVICE_HOST: outcome,
  CLOUD_RUN_JOB: outcome,
  K_SERVICE: outcome,
  GAE_ENV: outcome,
});

const ROWS: Row[] = [
  {
    config: 'nothing (auto)',
    options: {},
    expect: { developer: 'embedded', 'NODE_ENV=production': U, KUBERNETES_SERVICE_HOST: U, CLOUD_RUN_JOB: U, K_SERVICE: U, GAE_ENV: 'cloud' },
  },
  {
    config: 'target { url, serviceAccountEmail } (auto)',
    options: { target: URL_TARGET },
    expect: { developer: U, 'NODE_ENV=production': U, KUBERNETES_SERVICE_HOST: U, CLOUD_RUN_JOB: U, K_SERVICE: 'cloud', GAE_ENV: 'cloud' },
  },
  {
    config: "auth { mode: 'oidc' } (auto)",
    options: { auth: { mode: 'oidc', serviceAccountEmail: URL_TARGET.serviceAccountEmail } },
    expect: { ...everywhere(U), K_SERVICE: 'cloud', GAE_ENV: 'cloud' },
  },
  { config: "mode: 'embedded'", options: { mode: 'embedded' }, expect: everywhere('embedded') },
  { config: "mode: 'cloud' + target { url, serviceAccountEmail }", options: { mode: 'cloud', target: URL_TARGET }, expect: everywhere('cloud') },
  { config: "mode: 'cloud', nothing else", options: { mode: 'cloud' }, expect: { ...everywhere(U), GAE_ENV: 'cloud' } },
  { config: "mode: 'cloud' + target { appEngine }", options: { mode: 'cloud', target: { appEngine: {} } }, expect: { ...everywhere(U), GAE_ENV: 'cloud' } },
  {
    config: "mode: 'cloud' + auth { mode: 'appEngine' }",
    options: { mode: 'cloud', target: URL_TARGET, auth: { mode: 'appEngine' } },
    expect: { ...everywhere(U), GAE_ENV: 'cloud' },
  },
  {
    config: "mode: 'embedded' + auth appEngine dangerouslyTrustHeadersOutsideAppEngineForTests",
    options: { mode: 'embedded', auth: { mode: 'appEngine', dangerouslyTrustHeadersOutsideAppEngineForTests: true } },
    expect: { ...everywhere(U), developer: 'embedded', GAE_ENV: 'embedded' },
  },
  {
    config: "mode: 'embedded' + auth { mode: 'none' }",
    options: { mode: 'embedded', auth: { mode: 'none' } },
    expect: { ...everywhere(U), developer: 'embedded' },
  },
  { config: "auth { mode: 'none' } (auto)", options: { auth: { mode: 'none' } }, expect: everywhere(U) },
  { config: 'CLOUD_TASKS_EMULATOR_HOST + _JWKS_URI (auto)', options: {}, env: EMULATOR, expect: { ...everywhere('emulator'), K_SERVICE: U, GAE_ENV: U } },
  {
    config: "mode: 'emulator' + CLOUD_TASKS_EMULATOR_HOST + _JWKS_URI",
    options: { mode: 'emulator' },
    env: EMULATOR,
    expect: { ...everywhere('emulator'), K_SERVICE: U, GAE_ENV: U },
  },
  {
    config: "mode: 'emulator' without _JWKS_URI",
    options: { mode: 'emulator' },
    env: { CLOUD_TASKS_EMULATOR_HOST: EMULATOR.CLOUD_TASKS_EMULATOR_HOST },
    expect: everywhere(U),
  },
  { config: "mode: 'embedded' with CLOUD_TASKS_EMULATOR_HOST set", options: { mode: 'embedded' }, env: EMULATOR, expect: everywhere('embedded') },
  {
    config: 'CLOUD_TASKS_EMULATOR_HOST without _JWKS_URI (auto)',
    options: {},
    env: { CLOUD_TASKS_EMULATOR_HOST: EMULATOR.CLOUD_TASKS_EMULATOR_HOST },
    expect: everywhere(U),
  },
];

describe('start-up matrix: environment x configuration', () => {
  const saved = new Map(VARIABLES.map((name) => [name, process.env[name]]));
  const restore = (): void => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  afterEach(restore);

  function attempt(env: Record<string, string>, options: CreateDeferredOptions): { mode: string } | CloudDeferError {
    for (const name of VARIABLES) delete process.env[name];
    Object.assign(process.env, env);
    try {
      return { mode: createDeferred({ logger: false, ...options }).mode };
    } catch (err) {
      if (err instanceof CloudDeferError) return err;
      throw err;
    } finally {
      restore();
    }
  }

  for (const row of ROWS) {
    it(row.config, () => {
      for (const [envName, expected] of Object.entries(row.expect) as Array<[Env, Outcome]>) {
        const result = attempt({ ...ENVIRONMENTS[envName], ...(row.env ?? {}) }, row.options);
        const what = `${row.config} in ${envName}`;
        if (expected === U) {
          assert.ok(result instanceof CloudDeferError, `${what}: expected UNSAFE_CONFIGURATION, started in ${'mode' in result ? result.mode : ''}`);
          assert.equal(result.code, 'UNSAFE_CONFIGURATION', `${what}: ${result.message}`);
          assert.match(result.message, /mode: '(cloud|embedded)'|mode: "oidc"|CLOUD_TASKS_EMULATOR_JWKS_URI|auth: \{/, `${what}: the message says what to set`);
        } else {
          assert.ok(!(result instanceof CloudDeferError), `${what}: refused: ${result instanceof CloudDeferError ? result.message : ''}`);
          assert.equal(result.mode, expected, what);
        }
      }
    });
  }

  it('an external emulator whose JWKS cannot be fetched refuses to start; a reachable one starts', async () => {
    const emulator = await startEmulator({ port: 0 });
    try {
      process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
      process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = 'http://127.0.0.1:9/oauth2/v3/certs';
      const broken = createDeferred({ logger: false });
      await assert.rejects(
        broken.ready(),
        (err: unknown) => err instanceof CloudDeferError && err.code === 'UNSAFE_CONFIGURATION' && /CLOUD_TASKS_EMULATOR_JWKS_URI/.test(err.message),
      );
      await broken.close();
      process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = emulator.jwksUri;
      const working = createDeferred({ logger: false });
      await working.ready();
      assert.equal(working.mode, 'emulator');
      await working.close();
    } finally {
      await emulator.stop();
    }
  });
});
