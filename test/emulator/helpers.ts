// Shared set-up for the emulator tests: an emulator (usually on a ManualClock), the official client
// over real gRPC, and a real HTTP target on 127.0.0.1 that records what reaches it.
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createEmulatorClient, ManualClock, startEmulator, type Clock, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The emulator clock's time when the request reached the target. */
  receivedAt: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides the answer to the n-th request (0-based); a promise holds the response until it settles. */
export type Responder = (request: RecordedRequest, index: number) => Reply | Promise<Reply>;

/** A real HTTP server recording every request; answers 200 unless told otherwise. */
export class TargetServer {
  readonly requests: RecordedRequest[] = [];
  /** Requests received and not yet answered. */
  inFlight = 0;
  maxInFlight = 0;
  responder: Responder = () => ({ status: 200 });
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly server: http.Server,
    readonly baseUrl: string,
    private readonly clock: Clock,
  ) {}

  static async start(clock: Clock): Promise<TargetServer> {
    let target!: TargetServer;
    const server = http.createServer((req, res) => target.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    target = new TargetServer(server, `http://127.0.0.1:${port}`, clock);
    return target;
  }

  url(path = '/task'): string {
    return `${this.baseUrl}${path}`;
  }

  /** Resolves once at least `count` requests arrived (fails the test if they never do). */
  async waitForRequests(count: number, what = `${count} request(s) at the target`): Promise<RecordedRequest[]> {
    const giveUpAt = Date.now() + 10_000;
    while (this.requests.length < count) {
      if (Date.now() > giveUpAt) assert.fail(`timed out waiting for ${what}; got ${this.requests.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.requests;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const receivedAt = this.clock.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        receivedAt,
      };
      const index = this.requests.push(recorded) - 1;
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      for (const wake of this.waiters.splice(0)) wake();
      void Promise.resolve(this.responder(recorded, index)).then((reply) => {
        this.inFlight--;
        if (res.destroyed) return;
        res.writeHead(reply.status, reply.headers).end(reply.body ?? '');
      });
    });
  }
}

/** A promise to settle by hand: hold a target's answer until the test says so. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const PROJECT = 'test-project';
export const LOCATION = 'us-central1';
export const PARENT = `projects/${PROJECT}/locations/${LOCATION}`;
export const queuePath = (queueId: string): string => `${PARENT}/queues/${queueId}`;
export const taskPath = (queueId: string, taskId: string): string => `${queuePath(queueId)}/tasks/${taskId}`;

export interface TestContext {
  clock: ManualClock;
  emulator: EmulatorHandle;
  client: CloudTasksClient;
  target: TargetServer;
  close(): Promise<void>;
}

/** Emulator on a ManualClock (starting on a whole second), client and target. */
export async function startTestContext(options: EmulatorOptions = {}): Promise<TestContext> {
  const clock = options.clock instanceof ManualClock ? options.clock : new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const emulator = await startEmulator({ ...options, clock });
  const client = createEmulatorClient(emulator);
  const target = await TargetServer.start(clock);
  return {
    clock,
    emulator,
    client,
    target,
    close: async () => {
      await client.close();
      await emulator.stop();
      await target.close();
    },
  };
}

let queueCounter = 0;
/** A fresh queue id per test, so tests in one file do not share state. */
export function uniqueQueueId(prefix = 'q'): string {
  return `${prefix}-${process.pid}-${++queueCounter}`;
}

/**
 * Moves the manual clock on in `stepMs` steps, letting every attempt finish after each step, until
 * the target has seen `count` requests (or `maxMs` of emulated time passed).
 */
export async function advanceUntilRequests(context: TestContext, count: number, { stepMs = 1000, maxMs = 24 * 3600 * 1000 } = {}): Promise<void> {
  await context.emulator.idle();
  for (let elapsed = 0; context.target.requests.length < count; elapsed += stepMs) {
    if (elapsed >= maxMs) assert.fail(`only ${context.target.requests.length} of ${count} requests after ${maxMs} ms`);
    await context.clock.advance(stepMs);
    await context.emulator.idle();
  }
}

/** Asserts a call fails with the gRPC `code` (and a message matching `message`, if given). */
export async function assertGrpcError(call: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await assert.rejects(call, (error: { code?: number; details?: string }) => {
    assert.equal(error.code, code, `expected gRPC code ${code}, got ${error.code}: ${error.details}`);
    if (message) assert.match(error.details ?? '', message);
    return true;
  });
}

/** seconds/nanos (numbers, strings or Longs from the client) as ms. */
export function toMs(value: { seconds?: unknown; nanos?: unknown } | null | undefined): number {
  if (!value) return NaN;
  return Number(value.seconds ?? 0) * 1000 + Math.round(Number(value.nanos ?? 0) / 1e6);
}

export const seconds = (s: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(s), nanos: Math.round((s % 1) * 1e9) });
