// An in-memory Firestore emulator for the tests, speaking google.firestore.v1 over plaintext gRPC
// so that the official client talks to it through FIRESTORE_EMULATOR_HOST. See ../README.md.
import * as grpc from '@grpc/grpc-js';
import { FirestoreEngine, type EngineOptions } from './engine.js';
import { firestoreHandlers } from './grpc-service.js';
import { firestoreServiceDefinition } from './protos.js';

export interface FirestoreEmulatorOptions extends EngineOptions {
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string;
  /** Port to listen on; default 0 (any free port). */
  readonly port?: number;
}

export interface RunningFirestoreEmulator {
  readonly host: string;
  readonly port: number;
  /** `host:port`, the value for FIRESTORE_EMULATOR_HOST. */
  readonly address: string;
  /** Stops serving; calls still open are cut off after a moment. */
  stop(): Promise<void>;
  /** Deletes every document and forgets every transaction. */
  reset(): void;
}

/** How long stop() lets open calls finish before it cuts them off. */
const GRACEFUL_STOP_MS = 2000;
/** Firestore takes requests up to 10 MiB (and a 1 MiB document in several encodings); gRPC's default is 4 MiB. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export async function startFirestoreEmulator(options: FirestoreEmulatorOptions = {}): Promise<RunningFirestoreEmulator> {
  const host = options.host ?? '127.0.0.1';
  const engine = new FirestoreEngine(options);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(firestoreServiceDefinition(), firestoreHandlers(engine));
  const bindHost = host.includes(':') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  let stopped: Promise<void> | undefined;
  return {
    host,
    port,
    address: `${bindHost}:${port}`,
    reset: () => engine.reset(),
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        // Fail lock waits first, so no call stays open waiting for a transaction that never ends.
        engine.reset();
        const force = setTimeout(() => server.forceShutdown(), GRACEFUL_STOP_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      })),
  };
}

export type { EngineOptions } from './engine.js';
