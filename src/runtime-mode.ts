/**
 * Where createDeferred() runs and whether its configuration is safe there: which queue transport
 * `mode: 'auto'` picks, which authentication the handler uses by default, and which combinations
 * are refused at start-up (UNSAFE_CONFIGURATION) because anyone could then run tasks.
 * The table in README's "Authentication and IAM" is this file's behaviour.
 */
import { CloudDeferError } from './core/errors.js';
import type { AuthOptions, Jwks } from './http/auth.js';

export type RuntimeMode = 'embedded' | 'emulator' | 'cloud' | 'custom';

/** Variables that say "not a developer's machine"; the embedded default is never picked where one is set. */
export function productionSignals(env: NodeJS.ProcessEnv = process.env): string[] {
  const signals: string[] = [];
  if (env.NODE_ENV === 'production') signals.push('NODE_ENV=production');
  for (const name of ['K_SERVICE', 'GAE_ENV', 'KUBERNETES_SERVICE_HOST', 'CLOUD_RUN_JOB']) if (env[name]) signals.push(name);
  return signals;
}

/** Cloud Run (K_SERVICE) or App Engine (GAE_ENV): Google's platform, where auto means Cloud Tasks. */
export function onGooglePlatform(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.K_SERVICE || env.GAE_ENV);
}

const unsafe = (message: string): CloudDeferError => new CloudDeferError('UNSAFE_CONFIGURATION', message);

const HOW_TO_CHOOSE =
  "Set mode: 'cloud' with target: { url, serviceAccountEmail } (Cloud Tasks with OIDC; target: { appEngine: {} } on App Engine), " +
  'CLOUD_TASKS_EMULATOR_HOST and CLOUD_TASKS_EMULATOR_JWKS_URI for an external emulator, ' +
  "or mode: 'embedded' to run the in-process emulator and memory stores on purpose.";

export interface ModeInputs {
  mode?: 'auto' | RuntimeMode;
  hasTransport: boolean;
  hasClient: boolean;
  /** `target` or `auth` was given: the app is configured for Cloud Tasks. */
  configuredForCloudTasks: boolean;
}

/** The transport mode; throws UNSAFE_CONFIGURATION where auto would silently pick the embedded emulator outside development. */
export function resolveMode(inputs: ModeInputs, env: NodeJS.ProcessEnv = process.env): RuntimeMode {
  if (inputs.hasTransport) return 'custom';
  const mode = inputs.mode ?? 'auto';
  if (mode !== 'auto') return mode;
  if (env.CLOUD_TASKS_EMULATOR_HOST) return 'emulator';
  if (inputs.hasClient || onGooglePlatform(env)) return 'cloud';
  const signals = productionSignals(env);
  if (signals.length > 0) {
    throw unsafe(
      `Refusing to start: ${signals.join(', ')} says this is not a developer's machine, and no Cloud Tasks configuration was found, ` +
        `so cloud-defer will not fall back to the in-process emulator (anyone who can reach the handler could run tasks). ${HOW_TO_CHOOSE}`,
    );
  }
  if (inputs.configuredForCloudTasks) {
    throw unsafe(
      "Refusing to start: target or auth is configured, as for Cloud Tasks, but neither K_SERVICE, GAE_ENV nor CLOUD_TASKS_EMULATOR_HOST is set, so mode 'auto' cannot tell what you want. " +
        HOW_TO_CHOOSE,
    );
  }
  return 'embedded';
}

/** Why an auth mode the user chose is unsafe in this environment, or undefined when it is fine. */
export function unsafeAuthReason(auth: AuthOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const signals = productionSignals(env);
  if (auth.mode === 'none') {
    return signals.length > 0 ? `auth mode "none" lets anyone run your tasks, and ${signals.join(', ')} says this is not a developer's machine` : undefined;
  }
  if (auth.mode === 'appEngine') {
    if (env.GAE_ENV) return undefined;
    if (auth.dangerouslyTrustHeadersOutsideAppEngineForTests !== true) {
      return 'auth mode "appEngine" trusts X-AppEngine-* headers, which only App Engine strips from outside requests, and GAE_ENV is not set; elsewhere use { mode: "oidc", serviceAccountEmail }';
    }
    return signals.length > 0 ? `dangerouslyTrustHeadersOutsideAppEngineForTests is for tests, and ${signals.join(', ')} says this is not one` : undefined;
  }
  if (auth.jwks !== undefined && onGooglePlatform(env)) return "OIDC against a custom key set (the emulator's) is for development only";
  return undefined;
}

export interface DefaultAuthInputs {
  mode: RuntimeMode;
  appEngineTarget: boolean;
  /** The account HTTP targets are signed for (configured, or the emulator's default). */
  serviceAccountEmail: string | undefined;
  /** The account the emulator signs App Engine dispatches for. */
  appEngineServiceAccountEmail: string;
  /** The embedded emulator's key set, once it runs. */
  embeddedJwks: () => Promise<Jwks>;
}

/** The authentication used when `auth` is not given; never "none". */
export function defaultAuth(inputs: DefaultAuthInputs, env: NodeJS.ProcessEnv = process.env): AuthOptions {
  const emulatorAccounts = [inputs.serviceAccountEmail, inputs.appEngineServiceAccountEmail].filter((e): e is string => !!e);
  if (inputs.mode === 'embedded') return { mode: 'oidc', serviceAccountEmail: emulatorAccounts, jwks: inputs.embeddedJwks };
  if (inputs.mode === 'emulator') {
    const uri = env.CLOUD_TASKS_EMULATOR_JWKS_URI;
    if (!uri) {
      throw unsafe(
        'Refusing to start: CLOUD_TASKS_EMULATOR_HOST is set but CLOUD_TASKS_EMULATOR_JWKS_URI is not, so the handler could not check who sends tasks. ' +
          'Set CLOUD_TASKS_EMULATOR_JWKS_URI to the URI `npx cloud-defer emulator` prints, or pass auth: { mode: "oidc", serviceAccountEmail, jwks }.',
      );
    }
    return { mode: 'oidc', serviceAccountEmail: emulatorAccounts, jwks: uri };
  }
  if (inputs.appEngineTarget || (!inputs.serviceAccountEmail && env.GAE_ENV)) return { mode: 'appEngine' };
  if (inputs.serviceAccountEmail) return { mode: 'oidc', serviceAccountEmail: inputs.serviceAccountEmail };
  throw unsafe(
    'Refusing to start: nothing says how to check that a request comes from Cloud Tasks. ' +
      "Set target: { url, serviceAccountEmail } (Cloud Tasks signs an OIDC token for that account) or auth: { mode: 'oidc', serviceAccountEmail }, or run on App Engine with target: { appEngine: {} }.",
  );
}
