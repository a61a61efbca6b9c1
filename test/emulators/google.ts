/**
 * Google's own emulators for the tests, started by the harness when gcloud is installed, so that
 * `npm test` alone runs the Google-emulator cases (no service to start beforehand).
 *
 *   firestore       gcloud emulators firestore start                  (Firestore mode)
 *   datastore-mode  gcloud emulators firestore start --database-mode=datastore-mode
 *   datastore-legacy gcloud beta emulators datastore start --consistency=1.0 --no-store-on-disk
 *                   (OPTIMISTIC_WITH_ENTITY_GROUPS rules: 25 entity groups per transaction)
 *
 * They are Java programs that take tens of seconds to start on a loaded machine, so each is
 * started at most once per test process, on a free loopback port, and shared by every suite
 * (suites keep apart by namespace or collection prefix). They are stopped with their whole process
 * group when the test process exits. Where gcloud is absent, googleEmulator() answers undefined
 * and says so once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export type GoogleEmulatorMode = 'firestore' | 'datastore-mode' | 'datastore-legacy';

export interface GoogleEmulator {
  readonly mode: GoogleEmulatorMode;
  /** `127.0.0.1:port`, the value for FIRESTORE_EMULATOR_HOST or DATASTORE_EMULATOR_HOST. */
  readonly address: string;
  /** What the emulator said its version is (for the notes on its known bugs). */
  readonly version: string;
}

/** Java emulators on a loaded 2-core machine: 60 s is what they are allowed, with margin. */
const START_TIMEOUT_MS = Number(process.env.CLOUD_DEFER_GOOGLE_EMULATOR_START_MS ?? 120_000);
const READY = /Dev App Server is now running/;

const started = new Map<GoogleEmulatorMode, Promise<GoogleEmulator>>();
const children: ChildProcess[] = [];
let gcloud: boolean | undefined;
let saidAbsent = false;

/**
 * The backends whose full suites (contract, engine, transaction, iteration) run on Google's
 * emulators ONLY, in this process: CLOUD_DEFER_GOOGLE_SUITES="firestore,datastore-mode" (or
 * "datastore-legacy"). Unset (the default), the suites run on ours and then on Google's Firestore
 * and Datastore modes (see firestoreBackends(), datastoreBackends()).
 */
export function googleSuites(): ReadonlySet<GoogleEmulatorMode> {
  const listed = (process.env.CLOUD_DEFER_GOOGLE_SUITES ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of listed) {
    if (!['firestore', 'datastore-mode', 'datastore-legacy'].includes(name)) {
      throw new Error(`CLOUD_DEFER_GOOGLE_SUITES: "${name}" is not one of firestore, datastore-mode, datastore-legacy.`);
    }
  }
  return new Set(listed as GoogleEmulatorMode[]);
}

/** CLOUD_DEFER_GOOGLE_EMULATORS=off: run the store suites on our emulators only (quick local runs). */
export function googleEmulatorsOff(): boolean {
  return process.env.CLOUD_DEFER_GOOGLE_EMULATORS === 'off';
}

/** Whether gcloud (with its emulator components) can be run on this machine. */
export function gcloudPresent(): boolean {
  if (gcloud === undefined) {
    const probe = spawnSync('gcloud', ['--version'], { stdio: 'ignore', timeout: 30_000 });
    gcloud = probe.status === 0;
  }
  return gcloud;
}

/** Says once per process that the Google-emulator cases ran on our emulators only. */
export function sayAbsentOnce(): void {
  if (saidAbsent) return;
  saidAbsent = true;
  process.stdout.write("  (gcloud is not installed: the Google-emulator cases ran on cloud-defer's test emulators only)\n");
}

/** Google's emulator in this mode, started on first call and shared; undefined without gcloud. */
export async function googleEmulator(mode: GoogleEmulatorMode): Promise<GoogleEmulator | undefined> {
  if (!gcloudPresent()) {
    sayAbsentOnce();
    return undefined;
  }
  let emulator = started.get(mode);
  if (!emulator) {
    emulator = start(mode);
    started.set(mode, emulator);
    // A failed start is retried by the next caller rather than remembered.
    emulator.catch(() => started.delete(mode));
  }
  return emulator;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function commandFor(mode: GoogleEmulatorMode, hostPort: string): string[] {
  switch (mode) {
    case 'firestore':
      return ['emulators', 'firestore', 'start', `--host-port=${hostPort}`];
    case 'datastore-mode':
      return ['emulators', 'firestore', 'start', `--host-port=${hostPort}`, '--database-mode=datastore-mode'];
    case 'datastore-legacy':
      return ['beta', 'emulators', 'datastore', 'start', `--host-port=${hostPort}`, '--consistency=1.0', '--no-store-on-disk', '--project=cloud-defer-test'];
  }
}

async function start(mode: GoogleEmulatorMode): Promise<GoogleEmulator> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // Its own process group, so that gcloud and the Java child stop together.
  const child = spawn('gcloud', commandFor(mode, address), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise<GoogleEmulator>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`Google's ${mode} emulator did not start within ${START_TIMEOUT_MS} ms:\n${output.slice(-2000)}`)),
      START_TIMEOUT_MS,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      stopChild(child);
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      // Keep only what is needed to report a failed start and to read the version.
      if (output.length < 20_000) output += chunk.toString();
      if (READY.test(output)) {
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.stderr?.removeAllListeners('data');
        // Keep draining, or a full pipe would stall the emulator.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve({ mode, address, version: versionOf(mode, output) });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => fail(new Error(`Google's ${mode} emulator exited (${code ?? signal}) before it was ready:\n${output.slice(-2000)}`)));
    child.once('error', fail);
  });
}

function versionOf(mode: GoogleEmulatorMode, output: string): string {
  const found = /emulator[^\n]*?(\d+\.\d+\.\d+)/i.exec(output);
  if (found) return found[1]!;
  return mode === 'datastore-legacy' ? '2.3.1 (google-cloud-cli 528)' : '1.19.9 (google-cloud-cli 528)';
}

function stopChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

process.once('exit', () => {
  for (const child of children) stopChild(child);
});
