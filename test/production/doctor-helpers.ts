/** What the doctor tests share: a standalone emulator with its queues, and own redis-servers. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { Redis } from 'ioredis';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import type { DoctorCheck, DoctorReport } from '../../src/index.js';
import { eventually } from '../helpers/app.js';

export const PROJECT = 'local-project';
export const LOCATION = 'us-central1';
export const SERVICE_ACCOUNT = 'tasks-invoker@local-project.iam.gserviceaccount.com';
export const TARGET_URL = 'http://127.0.0.1:8080/_ah/queue/deferred';

export interface DoctorEmulator {
  emulator: EmulatorHandle;
  client: CloudTasksClient;
  restoreEnv(): void;
  stop(): Promise<void>;
}

/** An emulator that CLOUD_TASKS_EMULATOR_HOST points at, holding `mail` (5/s, 3 attempts) and `default`. */
export async function startDoctorEmulator(emulatorOptions: object = {}): Promise<DoctorEmulator> {
  const emulator = await startEmulator({ port: 0, ...emulatorOptions });
  const client = createEmulatorClient(emulator);
  const parent = `projects/${PROJECT}/locations/${LOCATION}`;
  await client.createQueue({ parent, queue: { name: `${parent}/queues/mail`, rateLimits: { maxDispatchesPerSecond: 5 }, retryConfig: { maxAttempts: 3 } } });
  await client.createQueue({ parent, queue: { name: `${parent}/queues/default` } });
  // As `npx cloud-defer emulator` prints them (the CLI's child processes inherit them).
  const saved = { host: process.env.CLOUD_TASKS_EMULATOR_HOST, jwks: process.env.CLOUD_TASKS_EMULATOR_JWKS_URI };
  process.env.CLOUD_TASKS_EMULATOR_HOST = emulator.address;
  process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = emulator.jwksUri;
  const restoreEnv = (): void => {
    for (const [name, value] of [
      ['CLOUD_TASKS_EMULATOR_HOST', saved.host],
      ['CLOUD_TASKS_EMULATOR_JWKS_URI', saved.jwks],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  return {
    emulator,
    client,
    restoreEnv,
    async stop() {
      restoreEnv();
      await client.close();
      await emulator.stop();
    },
  };
}

export function check(report: DoctorReport, id: string): DoctorCheck {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface OwnRedis {
  port: number;
  client: Redis;
  stop(): Promise<void>;
}

/** A redis-server of this test's own (shared Redis is never reconfigured). */
export async function startOwnRedis(policy: string): Promise<OwnRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', policy],
    { stdio: 'ignore' },
  );
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 50 });
  // Refused connections until the server listens are expected; ping() reports them.
  client.on('error', () => undefined);
  await eventually(async () => (await client.ping().catch(() => '')) === 'PONG', 'redis-server to start');
  return {
    port,
    client,
    async stop() {
      client.disconnect();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}
