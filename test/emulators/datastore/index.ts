import * as grpc from '@grpc/grpc-js';
import { datastoreServiceDefinition } from './protos.js';
import { DatastoreBackend } from './service.js';

export interface DatastoreEmulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port to listen on; default 0 (any free port). */
  port?: number;
  /** Project id to suggest to clients; the emulator serves every project. Default "cloud-defer-test". */
  projectId?: string;
  /**
   * 'datastore-mode' (default): no entity-group limit. 'optimistic-with-entity-groups': at most
   * 25 entity groups per transaction, as legacy Datastore and Google's legacy emulator enforce.
   */
  concurrencyMode?: 'datastore-mode' | 'optimistic-with-entity-groups' | 'pessimistic';
  /** In 'pessimistic' mode: lock waits (defaults 2 s for a transaction's commit, 60 s for an outside write, as Google's emulator 1.19.9). */
  lockWaits?: { upgradeTimeoutMs?: number; outsideWaitMs?: number };
}

export interface DatastoreEmulator {
  host: string;
  port: number;
  /** `host:port`, the value for DATASTORE_EMULATOR_HOST. */
  address: string;
  projectId?: string;
  stop(): Promise<void>;
  /** Forgets all entities and open transactions. */
  reset(): void;
}

// The service accepts requests up to 10 MiB and checks that limit itself; leave room above it.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 1000;

/** Starts an in-memory google.datastore.v1.Datastore service over plaintext gRPC. */
export async function startDatastoreEmulator(options: DatastoreEmulatorOptions = {}): Promise<DatastoreEmulator> {
  const host = options.host ?? '127.0.0.1';
  const backend = new DatastoreBackend({
    ...(options.concurrencyMode === 'optimistic-with-entity-groups' ? { entityGroupLimit: 25 } : {}),
    ...(options.concurrencyMode === 'pessimistic'
      ? { locking: { upgradeTimeoutMs: options.lockWaits?.upgradeTimeoutMs ?? 2000, outsideWaitMs: options.lockWaits?.outsideWaitMs ?? 60_000 } }
      : {}),
  });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': -1,
  });
  server.addService(datastoreServiceDefinition(), backend.handlers());
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return {
    host,
    port,
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    projectId: options.projectId ?? 'cloud-defer-test',
    stop: () => shutdown(server),
    reset: () => backend.reset(),
  };
}

/** Lets calls in flight finish, but does not wait for idle client channels to go away. */
function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
