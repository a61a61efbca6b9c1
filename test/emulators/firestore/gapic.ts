// The official low-level (GAPIC) client, for tests that send exact RPCs the high-level client does
// not expose (a transaction id reused after commit, a Commit with a chosen transaction).
import { credentials } from '@grpc/grpc-js';
import { v1 } from '@google-cloud/firestore';

export type GapicClient = InstanceType<typeof v1.FirestoreClient>;

/** Where the emulator is and which project to use (a FirestoreForTests has both). */
export interface EmulatorTarget {
  readonly address: string;
  readonly projectId: string;
}

export function gapicClient(target: EmulatorTarget): GapicClient {
  const separator = target.address.lastIndexOf(':');
  return new v1.FirestoreClient({
    servicePath: target.address.slice(0, separator).replace(/^\[|\]$/g, ''),
    port: Number(target.address.slice(separator + 1)),
    sslCreds: credentials.createInsecure(),
    projectId: target.projectId,
    customHeaders: { Authorization: 'Bearer owner' },
  });
}

export function databaseName(target: EmulatorTarget): string {
  return `projects/${target.projectId}/databases/(default)`;
}
