// The official CloudTasksClient wired to an emulator over plaintext gRPC.
import * as grpc from '@grpc/grpc-js';
import { CloudTasksClient } from '@google-cloud/tasks';

export interface EmulatorAddress {
  host: string;
  port: number;
}

/** Splits 'host:port' (or '[v6]:port'). */
export function parseEmulatorAddress(address: string): EmulatorAddress {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address.trim());
  if (!match || !match[1]) throw new Error(`expected "host:port", got "${address}"`);
  return { host: match[1], port: Number(match[2]) };
}

/**
 * A CloudTasksClient talking to the emulator at `target`: a 'host:port' string (as in
 * CLOUD_TASKS_EMULATOR_HOST) or the handle startEmulator returned. `apiEndpoint: 'host:port'` does
 * not work with the client, hence host and port given apart, with insecure channel credentials.
 */
export function createEmulatorClient(target: string | { address: string }): CloudTasksClient {
  const { host, port } = parseEmulatorAddress(typeof target === 'string' ? target : target.address);
  return new CloudTasksClient({
    apiEndpoint: host,
    port,
    sslCreds: grpc.credentials.createInsecure(),
    // Named here, the universe domain spares the client its credentials lookup (a metadata-server
    // probe and a warning on a laptop); an emulator needs no credentials.
    universeDomain: 'googleapis.com',
  });
}
