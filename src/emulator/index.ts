// cloud-defer/emulator: a Google Cloud Tasks v2 emulator served over gRPC, dispatching tasks to real
// HTTP targets with Cloud Tasks' headers, retries, rate limits and OIDC tokens.
import * as grpc from '@grpc/grpc-js';
import { resolveClock } from './clock.js';
import { CloudTasksEngine } from './engine.js';
import { addCloudTasksServices } from './grpc-service.js';
import { JWKS_PATH, PEM_CERTS_PATH, startJwksServer } from './jwks-server.js';
import { GOOGLE_ISSUER, OidcSigner } from './oidc.js';
import { DEFAULTS, type EmulatorHandle, type EmulatorOptions } from './options.js';
import { loadCloudTasksPackage } from './protos.js';

export { ManualClock, RealClock } from './clock.js';
export type { Clock, ClockOption, ClockTimer } from './clock.js';
export { createEmulatorClient, parseEmulatorAddress } from './client.js';
export type { EmulatorAddress } from './client.js';
export type { EmulatorHandle, EmulatorLogger, EmulatorOptions } from './options.js';
export type { IdTokenClaims, Jwk, Jwks } from './oidc.js';

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
  // A function is read at each attempt: an embedded emulator may start before the app's port is known.
  const baseOption = options.appEngineBaseUrl;
  const appEngineBaseUrl = typeof baseOption === 'function' ? () => new URL(baseOption()) : baseOption ? () => new URL(baseOption) : undefined;
  const signer = new OidcSigner();
  loadCloudTasksPackage();

  const engine = new CloudTasksEngine({
    clock,
    logger,
    signer,
    appEngineBaseUrl,
    taskDedupWindowMs: nonNegative('taskDedupWindowMs', options.taskDedupWindowMs, DEFAULTS.taskDedupWindowMs),
    queueNameReuseBlockMs: nonNegative(
      'queueNameReuseBlockMs',
      options.queueNameReuseBlockMs,
      DEFAULTS.queueNameReuseBlockMs,
    ),
    maxTaskSizeBytes,
    unlimitedRate: options.unlimitedRate ?? false,
    defaultLocation: {
      project: options.projectId ?? DEFAULTS.projectId,
      location: options.location ?? DEFAULTS.location,
    },
  });

  // Let oversized tasks reach the size check (INVALID_ARGUMENT) rather than gRPC's own limit.
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxTaskSizeBytes + 4 * 1024 * 1024,
  });
  addCloudTasksServices(server, engine, logger);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        hostPort(host, options.port ?? DEFAULTS.port),
        grpc.ServerCredentials.createInsecure(),
        (error, boundPort) => (error ? reject(error) : resolve(boundPort)),
      ),
    );
  } catch (error) {
    engine.stop();
    server.forceShutdown();
    throw error;
  }
  const jwksServer = await startJwksServer(signer, host, dialHost(host)).catch((error: unknown) => {
    engine.stop();
    server.forceShutdown();
    throw error;
  });

  const address = hostPort(dialHost(host), port);
  logger.info?.(
    `Cloud Tasks emulator listening on ${address} ` +
      `(projects/${options.projectId ?? DEFAULTS.projectId}/locations/${options.location ?? DEFAULTS.location})`,
  );

  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    address,
    jwks: signer.jwks,
    jwksUri: `${jwksServer.baseUrl}${JWKS_PATH}`,
    pemCertsUri: `${jwksServer.baseUrl}${PEM_CERTS_PATH}`,
    pemCerts: signer.pemCerts,
    issuer: GOOGLE_ISSUER,
    clock,
    idle: () => engine.idle(),
    stop: () => {
      stopping ??= (async () => {
        engine.stop();
        server.forceShutdown();
        await jwksServer.close();
        logger.info?.(`Cloud Tasks emulator on ${address} stopped`);
      })();
      return stopping;
    },
  };
}
