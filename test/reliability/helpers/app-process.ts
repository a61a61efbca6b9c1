/** The app of helpers/app-child in its own process: started, started on standby, SIGKILLed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import Redis from 'ioredis';
import type { Deferred } from '../../../src/index.js';
import { deleteKeys, REDIS_HOST, REDIS_PORT, testPrefix } from '../../redis/harness.js';
import { freePort, lineFrom, startEmulatorProcess, track, type EmulatorProcess } from './processes.js';

export interface AppChildOptions {
  port: number;
  /** Redis key prefix of its stores. */
  prefix: string;
  emulator: EmulatorProcess;
  /** The queue's retryConfig.maxAttempts (unset: Cloud Tasks' default). */
  maxAttempts?: number;
  /** heartbeatLeaseMs. */
  heartbeatMs?: number;
  /** deferred.close()'s graceMs on SIGTERM. */
  graceMs?: number;
  /** Loaded, but not listening until GO on stdin. */
  standby?: boolean;
}

export function spawnApp(options: AppChildOptions): ChildProcess {
  return track(
    spawn(process.execPath, [path.join(__dirname, 'app-child.js')], {
      env: {
        ...process.env,
        APP_PORT: String(options.port),
        REDIS_PREFIX: options.prefix,
        ...(options.maxAttempts !== undefined ? { MAX_ATTEMPTS: String(options.maxAttempts) } : {}),
        ...(options.heartbeatMs !== undefined ? { HEARTBEAT_MS: String(options.heartbeatMs) } : {}),
        ...(options.graceMs !== undefined ? { GRACE_MS: String(options.graceMs) } : {}),
        ...(options.standby ? { STANDBY: '1' } : {}),
        CLOUD_TASKS_EMULATOR_HOST: options.emulator.address,
        CLOUD_TASKS_EMULATOR_JWKS_URI: options.emulator.jwksUri,
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
}

/** Started and serving (its "READY" line printed). */
export async function startAppProcess(options: Omit<AppChildOptions, 'standby'>): Promise<ChildProcess> {
  const child = spawnApp(options);
  await lineFrom(child, 'READY ');
  return child;
}

/** A standby app: loaded, not listening until go() (the next instance, started while the old one serves). */
export function standbyApp(options: Omit<AppChildOptions, 'standby'>): { child: ChildProcess; go(): Promise<ChildProcess> } {
  const child = spawnApp({ ...options, standby: true });
  return {
    child,
    async go() {
      const ready = lineFrom(child, 'READY ', 60_000);
      child.stdin!.write('GO\n');
      await ready;
      return child;
    },
  };
}

export async function killApp(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** What a suite of app processes shares: an emulator process, a Redis client and key prefix, the app and this process's own Deferred. */
export interface AppProcessHarness {
  emulator: EmulatorProcess;
  client: Redis;
  prefix: string;
  app: ChildProcess | undefined;
  control: Deferred | undefined;
}

/** Registers the suite's hooks: a fresh emulator, client and prefix per test; afterwards the app killed, the Deferred closed, the keys deleted. */
export function appProcessHarness(): AppProcessHarness {
  const h = {} as AppProcessHarness;
  beforeEach(async () => {
    h.emulator = await startEmulatorProcess(await freePort());
    h.client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    h.prefix = testPrefix();
  });
  afterEach(async () => {
    if (h.app) await killApp(h.app);
    h.app = undefined;
    await h.control?.close({ graceMs: 0 });
    h.control = undefined;
    await h.emulator.kill();
    delete process.env.CLOUD_TASKS_EMULATOR_HOST;
    delete process.env.CLOUD_TASKS_EMULATOR_JWKS_URI;
    await deleteKeys(h.client, h.prefix);
    h.client.disconnect();
  });
  return h;
}
