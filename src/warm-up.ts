/**
 * Start-up warm-up for the embedded emulator, so the first defer() after listen() costs what the
 * next ones do. Measured (bench first-defer): after the transport and queues are up, the first
 * defer still paid about 15 ms for the client's and the emulator's first createTask (code compiled
 * on first use) and 15-30 ms for the first delivery (the emulator's first signed dispatch, then the
 * handler's first token check and run on this thread, arriving while defer() awaits its answer).
 * The warm-up runs one task through all of it on a throwaway engine of its own (fresh memory
 * stores, a silent logger, the app's authenticator), delivered to a private loopback port: the
 * code is the app's, warmed; the app's stores, counters, logs and telemetry are not touched.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { memoryStores } from '../adapters/memory/index.js';
import { createCodec } from './core/codec.js';
import { DeferredEngine } from './core/engine.js';
import type { QueueTarget, QueueTransport } from './core/transport.js';
import type { TaskAuthenticator } from './http/auth.js';
import { TaskHandler } from './http/handler.js';

export interface WarmUpOptions {
  transport: QueueTransport;
  queue: string;
  /** The handler URL: the audience a delivery's token is checked against. */
  audience: string;
  serviceAccountEmail?: string;
  /**
   * Also warm defer() and the delivery path with a task on a throwaway engine, delivered to a
   * private loopback port and checked by `authenticator` (the app's). Left out when the queue has
   * rate limits to spend or the emulator's clock is a test's.
   */
  delivery?: { authenticator: TaskAuthenticator; handlerPath: string };
  /** How long to wait for that dispatch (default 2 s); the task is deleted either way. */
  timeoutMs?: number;
}

/** Best effort: every failure is swallowed (the first defer then pays instead). */
export async function warmUp(options: WarmUpOptions): Promise<void> {
  try {
    if (options.delivery) await warmDelivery(options, options.delivery);
    else await warmCreate(options);
  } catch {
    // Nothing to report: this only moves work earlier.
  }
}

function targetOf(url: string, options: WarmUpOptions): QueueTarget {
  const { serviceAccountEmail, audience } = options;
  return { kind: 'http', url, ...(serviceAccountEmail ? { oidc: { serviceAccountEmail, audience } } : {}) };
}

/** A task an hour ahead, deleted at once: never dispatched. */
async function warmCreate(options: WarmUpOptions): Promise<void> {
  const { name } = await options.transport.enqueue({
    queue: options.queue,
    scheduleTime: Date.now() + 3_600_000,
    bodyBase64: '',
    headers: {},
    target: targetOf(options.audience, options),
  });
  await options.transport.deleteTask(name);
}

const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };
const WARM_UP_TASK = 'cloud-defer.warm-up';

async function warmDelivery(options: WarmUpOptions, delivery: NonNullable<WarmUpOptions['delivery']>): Promise<void> {
  let ran!: () => void;
  const done = new Promise<void>((resolve) => {
    ran = resolve;
  });
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${delivery.handlerPath}`;
  const { serviceAccountEmail, audience } = options;
  const engine = new DeferredEngine({
    stores: memoryStores(),
    transport: async () => options.transport,
    codec: createCodec(),
    logger: SILENT,
    target: () => ({ default: 'http', http: { url, audience, ...(serviceAccountEmail ? { serviceAccountEmail } : {}) } }),
    defaultQueue: options.queue,
    inlineLimitBytes: 100 * 1024,
    retentionMs: 60_000,
    leaseMs: 60_000,
    now: Date.now,
  });
  engine.task(WARM_UP_TASK, () => ran());
  const handler = new TaskHandler({
    engine,
    authenticator: delivery.authenticator,
    logger: SILENT,
    handlerPath: delivery.handlerPath,
    sweepPath: `${delivery.handlerPath}/sweep`,
    maxBodyBytes: 64 * 1024,
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handler
        .handle({
          method: req.method ?? 'POST',
          path: delivery.handlerPath,
          headers: req.headers,
          remoteAddress: req.socket.remoteAddress,
          readBody: async () => Buffer.concat(chunks),
        })
        .then(
          (response) => res.writeHead(response.status, response.headers).end(response.body),
          () => res.writeHead(500).end(),
        );
    });
  });
  let timer: NodeJS.Timeout | undefined;
  let cloudTask: string | undefined;
  try {
    const info = await engine.defer(WARM_UP_TASK, []);
    cloudTask = info.cloudTaskName;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs ?? 2_000)))]);
    // Settled (or given up on): let the answer reach the emulator before the port closes.
    await info.wait({ timeoutMs: 500 }).catch(() => undefined);
  } finally {
    clearTimeout(timer);
    // Gone already when the delivery succeeded; otherwise it must not retry against a closed port.
    if (cloudTask) await options.transport.deleteTask(cloudTask).catch(() => undefined);
    await engine.shutdown(0).catch(() => undefined);
    server.close();
    server.closeAllConnections();
  }
}
