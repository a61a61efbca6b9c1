/** The one mapping of Google (gRPC) error codes for the Datastore and Firestore adapters. */
import { CloudDeferError } from '../../src/core/errors.js';

/** gRPC status codes the adapters branch on. */
export const GRPC = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isAborted = (error: unknown): boolean => grpcCode(error) === GRPC.ABORTED;

/** Codes that say the service is there but cannot serve now, or could not be reached. */
const UNAVAILABLE_CODES: ReadonlySet<number> = new Set([
  GRPC.CANCELLED,
  GRPC.DEADLINE_EXCEEDED,
  GRPC.RESOURCE_EXHAUSTED,
  GRPC.ABORTED,
  GRPC.INTERNAL,
  GRPC.UNAVAILABLE,
]);

/** Which service an adapter talks to: named in the message, with the emulator variable to check. */
export interface GoogleService {
  name: 'Datastore' | 'Firestore';
  emulatorVariable: 'DATASTORE_EMULATOR_HOST' | 'FIRESTORE_EMULATOR_HOST';
}

/**
 * A service that cannot serve becomes CloudDeferError STORE_UNAVAILABLE saying where it looked;
 * other errors (a bad request, a missing index or permission) and our own pass through unchanged.
 */
export function toStoreError(service: GoogleService, where: string, action: string, error: unknown): unknown {
  if (error instanceof CloudDeferError) return error;
  const code = grpcCode(error);
  if (code === undefined || !UNAVAILABLE_CODES.has(code)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const hint =
    code === GRPC.ABORTED
      ? 'the write kept meeting contention after every retry; the caller may try again'
      : `check that ${service.name} (or ${service.emulatorVariable}) is reachable from this process, and the client's credentials and project`;
  return new CloudDeferError('STORE_UNAVAILABLE', `cloud-defer could not ${action}: ${where} answered "${message}"; ${hint}.`, { cause: error });
}
