// Public options and handle of the Cloud Tasks emulator.
import type { Clock, ClockOption } from './clock.js';
import type { DeniedPermissions } from './iam.js';
import type { Jwks } from './oidc.js';
import type { QueuesSource } from './queue-file.js';

/** Where the emulator reports what it does. Every method is optional; the default logs nothing. */
export interface EmulatorLogger {
  debug?(message: string): void;
  info?(message: string): void;
  warn?(message: string): void;
  error?(message: string): void;
}

export interface EmulatorOptions {
  /** Interface the emulator (gRPC and REST) and its JWKS server listen on. Default 127.0.0.1. */
  host?: string;
  /** The one port for gRPC and REST; 0 (default) picks a free one. */
  port?: number;
  /** Default project, used in log lines and as ListLocations' answer. Default "local-project". */
  projectId?: string;
  /** Default location, used in log lines and as ListLocations' answer. Default "us-central1". */
  location?: string;
  /** 'real' (default) or a clock such as ManualClock, which every emulator timer then runs on. */
  clock?: ClockOption;
  /** Base URL App Engine targets are sent to, e.g. http://127.0.0.1:8080. Without it they fail. */
  appEngineBaseUrl?: string;
  /**
   * Per-service App Engine routing: "service" or "version.service" (the default service is
   * "default") -> base URL. Services not listed go to appEngineBaseUrl.
   */
  appEngineRoutes?: Readonly<Record<string, string>>;
  /**
   * Queues created (or updated) at start: a YAML/JSON file path or its content. A list of queues
   * (djangae's names such as rate_per_second, or Cloud Tasks' field names), or App Engine's queue.yaml.
   */
  queues?: QueuesSource;
  /**
   * Where firebase-admin's tasks go when it leaves httpRequest.url empty, as Firebase's emulator
   * fills it: a base URL the queue (function) id is appended to, a template with {project},
   * {location} and {queue}, or a function. Without it such tasks are refused with a clear message.
   */
  functionUrlBase?: string | ((queue: { project: string; location: string; queueId: string }) => string);
  /** Permissions TestIamPermissions refuses (a list, or a predicate over queue name and permission). */
  deniedPermissions?: DeniedPermissions;
  /** How long a completed or deleted task's name stays taken. Default 1 hour. */
  taskDedupWindowMs?: number;
  /** How long a deleted queue's name cannot be reused. Default 7 days. */
  queueNameReuseBlockMs?: number;
  /** Largest CreateTask accepted, in bytes of the serialized request. Default 1 MiB (1,048,576). */
  maxTaskSizeBytes?: number;
  /**
   * Test and benchmark only: ignore max_dispatches_per_second (the token bucket) on every queue.
   * max_concurrent_dispatches still applies. Cloud Tasks has no such switch.
   */
  unlimitedRate?: boolean;
  logger?: EmulatorLogger;
}

export interface EmulatorHandle {
  /** The host the gRPC server listens on (as given). */
  readonly host: string;
  readonly port: number;
  /**
   * 'host:port' to dial (127.0.0.1 when listening on every interface): gRPC and REST share it, so
   * it is the value of CLOUD_TASKS_EMULATOR_HOST for firebase-admin as well.
   */
  readonly address: string;
  /** `http://host:port`, the REST base URL (e.g. `${restUrl}/v2/projects/P/locations/L/queues`). */
  readonly restUrl: string;
  /** Public key(s) the OIDC tokens are signed with. */
  readonly jwks: Jwks;
  /** http URL serving `jwks` (Google's /oauth2/v3/certs shape). */
  readonly jwksUri: string;
  /** http URL serving the same key(s) as a kid -> PEM map (Google's /oauth2/v1/certs shape). */
  readonly pemCertsUri: string;
  /** kid -> PEM of the signing key, ready for OAuth2Client#verifySignedJwtWithCertsAsync. */
  readonly pemCerts: Readonly<Record<string, string>>;
  /** Signs with a new key (new kid) from now on; the old one stays listed until the next rotation. */
  rotateSigningKey(): Promise<void>;
  /** The `iss` claim of the tokens: https://accounts.google.com, as Google's ID tokens. */
  readonly issuer: string;
  readonly clock: Clock;
  /** Resolves once no dispatch is under way (a target that never answers holds it until the deadline). */
  idle(): Promise<void>;
  /** Closes the gRPC and JWKS servers, timers and dispatch connections. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  projectId: 'local-project',
  location: 'us-central1',
  taskDedupWindowMs: 60 * 60 * 1000,
  queueNameReuseBlockMs: 7 * 24 * 60 * 60 * 1000,
  maxTaskSizeBytes: 1024 * 1024,
} as const;
