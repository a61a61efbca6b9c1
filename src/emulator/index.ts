// cloud-defer/emulator: a Google Cloud Tasks v2 emulator served over gRPC, dispatching tasks to real
// HTTP targets with Cloud Tasks' headers, retries, rate limits and OIDC tokens.
import * as grpc from '@grpc/grpc-js';
import { resolveClock } from './clock.js';
import { CloudTasksEngine } from './engine.js';
import { addCloudTasksServices } from './grpc-service.js';
import { JWKS_PATH, PEM_CERTS_PATH, startJwksServer } from './jwks-server.js';
import { GOOGLE_ISSUER, OidcSigner } from './oidc.js';
import { DEFAULTS, type EmulatorHandle, type EmulatorOptions } from './options.js';
import { protobufRoot } from './json-protos.js';
import { listenShared } from './listener.js';
import { loadCloudTasksPackage } from './protos.js';
import { readQueueSpecs } from './queue-file.js';
import { RestService } from './rest-service.js';

export { ManualClock, RealClock } from './clock.js';
export type { Clock, ClockOption, ClockTimer } from './clock.js';
export { createEmulatorClient, parseEmulatorAddress } from './client.js';
export type { EmulatorAddress } from './client.js';
export type { EmulatorHandle, EmulatorLogger, EmulatorOptions } from './options.js';
export type { IdTokenClaims, Jwk, Jwks } from './oidc.js';
export type { DeniedPermissions } from './iam.js';
export { QueueFileError, readQueueSpecs } from './queue-file.js';
export type { QueueFileEntry, QueueSpec, QueuesSource } from './queue-file.js';

type FunctionUrl = (queue: { project: string; location: string; queueId: string }) => string;

/** functionUrlBase as a function: a template with {project}/{location}/{queue}, or a base + "/queue". */
function functionUrlFrom(option: EmulatorOptions['functionUrlBase']): FunctionUrl | undefined {
  if (option === undefined || typeof option === 'function') return option;
  new URL(option.replace(/\{(project|location|queue)\}/g, 'x')); // refuses a malformed base now
  if (/\{(project|location|queue)\}/.test(option)) {
    return (q) => option.replace('{project}', q.project).replace('{location}', q.location).replace('{queue}', q.queueId);
  }
  const base = option.replace(/\/+$/, '');
  return (q) => `${base}/${q.queueId}`;
}

/** Hosts that accept connections on every interface are dialled through loopback. */
function dialHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number >= 0`);
  return value;
}

/** Starts an emulator; stop it with the handle's stop(). */
export async function startEmulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  const host = options.host ?? DEFAULTS.host;
  const clock = resolveClock(options.clock);
  const logger = options.logger ?? {};
  const maxTaskSizeBytes = nonNegative('maxTaskSizeBytes', options.maxTaskSizeBytes, DEFAULTS.maxTaskSizeBytes);
  const appEngineBaseUrl = options.appEngineBaseUrl ? new URL(options.appEngineBaseUrl) : undefined;
  const appEngineRoutes = new Map<string, URL>();
  for (const [service, url] of Object.entries(options.appEngineRoutes ?? {})) appEngineRoutes.set(service, new URL(url));
  const projectId = options.projectId ?? DEFAULTS.projectId;
  const location = options.location ?? DEFAULTS.location;
  const queueSpecs = options.queues === undefined ? [] : readQueueSpecs(options.queues, projectId, location);
  const functionUrl = functionUrlFrom(options.functionUrlBase);
  const signer = new OidcSigner();
  loadCloudTasksPackage();
  protobufRoot();

  const engine = new CloudTasksEngine({
    clock,
    logger,
    signer,
    appEngineBaseUrl,
    appEngineRoutes,
    deniedPermissions: options.deniedPermissions,
    taskDedupWindowMs: nonNegative('taskDedupWindowMs', options.taskDedupWindowMs, DEFAULTS.taskDedupWindowMs),
    queueNameReuseBlockMs: nonNegative('queueNameReuseBlockMs', options.queueNameReuseBlockMs, DEFAULTS.queueNameReuseBlockMs),
    maxTaskSizeBytes,
    unlimitedRate: options.unlimitedRate ?? false,
    defaultLocation: { project: projectId, location },
  });
  for (const spec of queueSpecs) {
    engine.defineQueue(spec.name, spec.config);
    if (spec.paused) engine.pauseQueue(spec.name);
    logger.debug?.(`queue ${spec.name} defined from the queues file`);
  }

  // Let oversized tasks reach the size check (INVALID_ARGUMENT) rather than gRPC's own limit.
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxTaskSizeBytes + 4 * 1024 * 1024,
  });
  addCloudTasksServices(server, engine, logger);
  const rest = new RestService({
    engine,
    logger,
    functionUrl,
    // JSON carries bytes as base64 (4/3) plus field names: leave room for the size check to answer.
    maxBodyBytes: 2 * maxTaskSizeBytes + 4 * 1024 * 1024,
  });
  let listener: Awaited<ReturnType<typeof listenShared>>;
  try {
    listener = await listenShared(host, options.port ?? DEFAULTS.port, server.createConnectionInjector(grpc.ServerCredentials.createInsecure()), rest.listener);
  } catch (error) {
    engine.stop();
    server.forceShutdown();
    throw error;
  }
  const port = listener.port;
  const jwksServer = await startJwksServer(signer, host, dialHost(host)).catch(async (error: unknown) => {
    engine.stop();
    await listener.close();
    server.forceShutdown();
    throw error;
  });

  const address = hostPort(dialHost(host), port);
  logger.info?.(`Cloud Tasks emulator listening on ${address}, gRPC and REST ` + `(projects/${projectId}/locations/${location})`);

  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    address,
    restUrl: `http://${address}`,
    get jwks() {
      return signer.jwks;
    },
    jwksUri: `${jwksServer.baseUrl}${JWKS_PATH}`,
    pemCertsUri: `${jwksServer.baseUrl}${PEM_CERTS_PATH}`,
    get pemCerts() {
      return signer.pemCerts;
    },
    rotateSigningKey: async () => signer.rotate(),
    issuer: GOOGLE_ISSUER,
    clock,
    idle: () => engine.idle(),
    stop: () => {
      stopping ??= (async () => {
        engine.stop();
        await listener.close();
        server.forceShutdown();
        await jwksServer.close();
        logger.info?.(`Cloud Tasks emulator on ${address} stopped`);
      })();
      return stopping;
    },
  };
}
