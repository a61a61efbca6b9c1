/** Real child processes for the reliability tests: an emulator in its own process, free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import * as path from 'node:path';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves with the first stdout line starting with `prefix` (rest of the line). */
export function lineFrom(child: ChildProcess, prefix: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`no "${prefix}" line from child within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      for (const line of buffer.split('\n')) {
        if (line.startsWith(prefix)) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          resolve(line.slice(prefix.length).trim());
          return;
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing "${prefix}"`));
    });
  });
}

/** Children still alive when the test process exits are killed, so a failed test leaves none behind. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface EmulatorProcess {
  readonly address: string;
  /** Where the emulator publishes the keys that sign its OIDC tokens (CLOUD_TASKS_EMULATOR_JWKS_URI). */
  readonly jwksUri: string;
  /** Points this process's Deferreds at it (CLOUD_TASKS_EMULATOR_HOST and _JWKS_URI). */
  useFromEnv(): void;
  readonly child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The Cloud Tasks emulator in its own process on `port`. */
export async function startEmulatorProcess(port: number): Promise<EmulatorProcess> {
  const child = track(spawn(process.execPath, [path.join(__dirname, 'emulator-child.js'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const [address, jwksUri] = (await lineFrom(child, 'READY ')).split(' ') as [string, string];
  return {
    address,
    jwksUri,
    child,
    useFromEnv() {
      process.env.CLOUD_TASKS_EMULATOR_HOST = address;
      process.env.CLOUD_TASKS_EMULATOR_JWKS_URI = jwksUri;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
