/**
 * Start-up warm-up for the embedded emulator, so the first defer() after listen() costs what the
 * next ones do. Measured (bench first-defer): after the transport and queues are up, the first
 * defer still paid about 15 ms for the client's and the emulator's first createTask (code compiled
 * on first use) and 15-30 ms for the first delivery (the emulator's first signed dispatch, then the
 * handler's first token check and run on this thread, arriving while defer() awaits its answer).
 * The warm-up does one of each, where nothing a user sees is touched.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { QueueTarget, QueueTransport } from './core/transport.js';
import type { TaskHandler } from './http/handler.js';

export interface WarmUpOptions {
  transport: QueueTransport;
  queue: string;
  /** The handler URL: the audience a delivery's token is checked against. */
  audience: string;
  serviceAccountEmail?: string;
  /**
   * Also warm the delivery path: the emulator dispatches one task to a private loopback port, whose
   * request goes to `handler` at `sweepPath` (a sweep, what Cloud Scheduler would call). Left out
   * when a sweep would touch stores other processes share, or the queue has rate limits.
   */
  delivery?: { handler: TaskHandler; sweepPath: string };
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

async function warmDelivery(options: WarmUpOptions, delivery: NonNullable<WarmUpOptions['delivery']>): Promise<void> {
  let answered!: () => void;
  const done = new Promise<void>((resolve) => {
    answered = resolve;
  });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      delivery.handler
        .handle({
          method: req.method ?? 'POST',
          path: delivery.sweepPath,
          headers: req.headers,
          remoteAddress: req.socket.remoteAddress,
          readBody: async () => Buffer.concat(chunks),
        })
        .then(
          (response) => {
            res.statusCode = response.status;
            res.end(response.body);
          },
          () => {
            res.statusCode = 500;
            res.end();
          },
        )
        .finally(answered);
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  let timer: NodeJS.Timeout | undefined;
  try {
    const { port } = server.address() as AddressInfo;
    const { name } = await options.transport.enqueue({
      queue: options.queue,
      bodyBase64: '',
      headers: {},
      target: targetOf(`http://127.0.0.1:${port}${delivery.sweepPath}`, options),
    });
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs ?? 2_000)))]);
    // Gone already when the dispatch succeeded; otherwise it must not retry against a closed port.
    await options.transport.deleteTask(name).catch(() => undefined);
  } finally {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  }
}
