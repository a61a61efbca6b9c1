// The official CloudTasksClient wired to an emulator over plaintext gRPC, or over REST
// (`fallback: true` / `'rest'`, as on Cloud Functions and in bundlers).
import * as grpc from '@grpc/grpc-js';
import { CloudTasksClient } from '@google-cloud/tasks';
import { OAuth2Client } from 'google-auth-library';

export interface EmulatorAddress {
  host: string;
  port: number;
}

export interface EmulatorClientOptions {
  /** The client's transport: gRPC (default), or its HTTP/1.1 JSON modes (`true` and `'rest'` both send REST). */
  fallback?: boolean | 'rest';
}

/** Splits 'host:port' (or '[v6]:port'). */
export function parseEmulatorAddress(address: string): EmulatorAddress {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address.trim());
  if (!match || !match[1]) throw new Error(`expected "host:port", got "${address}"`);
  return { host: match[1], port: Number(match[2]) };
}

/** An auth client that never looks for credentials: the emulator accepts any bearer token. */
function emulatorAuthClient(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'emulator', expiry_date: Date.now() + 100 * 365 * 24 * 3600 * 1000 });
  return client;
}

/**
 * A CloudTasksClient talking to the emulator at `target`: a 'host:port' string (as in
 * CLOUD_TASKS_EMULATOR_HOST) or the handle startEmulator returned. `apiEndpoint: 'host:port'` does
 * not work with the client, hence host and port given apart, with insecure channel credentials
 * (gRPC) or the plain http protocol (REST).
 */
export function createEmulatorClient(target: string | { address: string }, options: EmulatorClientOptions = {}): CloudTasksClient {
  const { host, port } = parseEmulatorAddress(typeof target === 'string' ? target : target.address);
  if (options.fallback) {
    return new CloudTasksClient({
      fallback: options.fallback,
      apiEndpoint: host,
      port,
      protocol: 'http',
      // google-gax may resolve its own copy of google-auth-library; the client only calls getRequestHeaders().
      authClient: emulatorAuthClient() as unknown as NonNullable<ConstructorParameters<typeof CloudTasksClient>[0]>['authClient'],
      universeDomain: 'googleapis.com',
    });
  }
  return new CloudTasksClient({
    apiEndpoint: host,
    port,
    sslCreds: grpc.credentials.createInsecure(),
    // Named here, the universe domain spares the client its credentials lookup (a metadata-server
    // probe and a warning on a laptop); an emulator needs no credentials.
    universeDomain: 'googleapis.com',
  });
}
