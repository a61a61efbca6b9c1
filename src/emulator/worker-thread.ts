// The emulator on a worker thread: the same gRPC server, dispatcher and JWKS server, off the app's
// event loop, so an app on the embedded default and its emulator use two cores instead of one.
// The handle is the in-process one's, less what cannot cross a thread (a ManualClock, a logger's
// functions: those run in-process, see canRunOnWorker).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RealClock } from './clock.js';
import type { EmulatorHandle, EmulatorLogger, EmulatorOptions } from './options.js';

type LogLevel = keyof EmulatorLogger;
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const WORKER_KEY = 'cloudDeferEmulatorWorker';

/** What the worker may be given: EmulatorOptions without a clock object or a logger. */
export type WorkerEmulatorOptions = Omit<EmulatorOptions, 'clock' | 'logger'> & { clock?: 'real' };

type ToWorker = { kind: 'idle'; id: number } | { kind: 'stop'; id: number } | { kind: 'rotate'; id: number };
type SigningKeys = Pick<EmulatorHandle, 'jwks' | 'pemCerts'>;
type FromWorker =
  | { kind: 'ready'; handle: Omit<EmulatorHandle, 'clock' | 'idle' | 'stop' | 'rotateSigningKey'> }
  | { kind: 'failed'; message: string; code?: string }
  | { kind: 'log'; level: LogLevel; message: string }
  | { kind: 'done'; id: number; keys?: SigningKeys };

/** True when these options can be honoured on a worker thread (a real clock, no function options; logs are forwarded). */
export function canRunOnWorker(options: EmulatorOptions): boolean {
  // Functions cannot cross to the worker (structured clone).
  const functions = typeof options.functionUrlBase === 'function' || typeof options.deniedPermissions === 'function';
  return (options.clock === undefined || options.clock === 'real') && !functions;
}

/**
 * Starts the emulator on a worker thread. Its handle works as startEmulator's: `idle()` and `stop()`
 * are answered by the worker; log lines come back to `logger` on this thread.
 */
export async function startEmulatorWorker(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  if (!canRunOnWorker(options)) {
    throw new TypeError(
      'startEmulatorWorker needs the real clock and no function options (functionUrlBase, deniedPermissions): run those in-process with startEmulator',
    );
  }
  const { logger, clock: _clock, ...data } = options;
  const levels = LEVELS.filter((level) => typeof logger?.[level] === 'function');
  const worker = new Worker(__filename, { workerData: { [WORKER_KEY]: { options: data, levels } } });
  const pending = new Map<number, (keys?: SigningKeys) => void>();
  let nextId = 0;
  let exited = false;
  const ready = new Promise<FromWorker & { kind: 'ready' }>((resolve, reject) => {
    worker.on('message', (message: FromWorker) => {
      if (message.kind === 'ready') resolve(message);
      else if (message.kind === 'failed') reject(Object.assign(new Error(message.message), message.code ? { code: message.code } : {}));
      else if (message.kind === 'log') logger?.[message.level]?.(message.message);
      else if (message.kind === 'done') {
        pending.get(message.id)?.(message.keys);
        pending.delete(message.id);
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      exited = true;
      for (const done of pending.values()) done();
      pending.clear();
      reject(new Error(`the emulator worker exited with code ${code} before it started`));
    });
  });
  const ask = (kind: ToWorker['kind']): Promise<SigningKeys | undefined> => {
    if (exited) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise<SigningKeys | undefined>((resolve) => {
      pending.set(id, resolve);
      worker.postMessage({ kind, id } satisfies ToWorker);
    });
  };
  const { handle } = await ready;
  let stopping: Promise<void> | undefined;
  // The signing key lives in the worker: after a rotation it sends the new public keys back.
  let keys: SigningKeys = { jwks: handle.jwks, pemCerts: handle.pemCerts };
  return {
    ...handle,
    get jwks() {
      return keys.jwks;
    },
    get pemCerts() {
      return keys.pemCerts;
    },
    clock: new RealClock(),
    idle: async () => void (await ask('idle')),
    rotateSigningKey: async () => {
      keys = (await ask('rotate')) ?? keys;
    },
    stop: () => {
      stopping ??= (async () => {
        await ask('stop');
        await worker.terminate();
      })();
      return stopping;
    },
  };
}

/** The worker's side: start the emulator, report its handle, answer idle and stop. */
async function runWorker(): Promise<void> {
  const port = parentPort!;
  const { options, levels } = (workerData as Record<string, { options: WorkerEmulatorOptions; levels: LogLevel[] }>)[WORKER_KEY]!;
  const logger: EmulatorLogger = {};
  for (const level of levels) logger[level] = (message: string) => port.postMessage({ kind: 'log', level, message } satisfies FromWorker);
  // Loaded here, not at the top: the main thread imports this file only to start the worker.
  const { startEmulator } = require('./index.js') as typeof import('./index.js');
  let emulator: EmulatorHandle;
  try {
    emulator = await startEmulator({ ...options, logger });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    port.postMessage({
      kind: 'failed',
      message: error instanceof Error ? error.message : String(error),
      ...(typeof code === 'string' ? { code } : {}),
    } satisfies FromWorker);
    return;
  }
  const { clock: _clock, idle: _idle, stop: _stop, rotateSigningKey: _rotate, ...handle } = emulator;
  port.postMessage({ kind: 'ready', handle } satisfies FromWorker);
  port.on('message', (message: ToWorker) => {
    if (message.kind === 'rotate') {
      void emulator
        .rotateSigningKey()
        .then(() => port.postMessage({ kind: 'done', id: message.id, keys: { jwks: emulator.jwks, pemCerts: emulator.pemCerts } } satisfies FromWorker));
      return;
    }
    const work = message.kind === 'idle' ? emulator.idle() : emulator.stop();
    void work.finally(() => port.postMessage({ kind: 'done', id: message.id } satisfies FromWorker));
  });
}

// Only a worker this file started has this key: an app that itself runs on a worker thread and
// imports cloud-defer is left alone.
if (!isMainThread && typeof workerData === 'object' && workerData !== null && WORKER_KEY in workerData) void runWorker();
