// Sends one task attempt over HTTP(S) with keep-alive connections and reports how it ended: an
// HTTP status, the dispatch deadline passing, or a connection error.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Clock, ClockTimer } from './clock.js';

export interface OutgoingAttempt {
  url: URL;
  method: string;
  headers: http.OutgoingHttpHeaders;
  body: Buffer | null;
  deadlineMs: number;
}

export type AttemptOutcome =
  | { kind: 'response'; httpStatus: number; retryAfter: string | undefined }
  | { kind: 'deadline' }
  | { kind: 'error'; message: string };

export interface AttemptHandle {
  /** Resolves once the request is written out (or failed): the attempt has started. */
  started: Promise<void>;
  done: Promise<AttemptOutcome>;
}

export class HttpDispatcher {
  private readonly httpAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, scheduling: 'lifo' });
  private readonly active = new Set<http.ClientRequest>();
  private readonly deadlines = new Set<ClockTimer>();
  private closed = false;

  constructor(private readonly clock: Clock) {}

  send(attempt: OutgoingAttempt): AttemptHandle {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const done = new Promise<AttemptOutcome>((resolve) => {
      if (this.closed) {
        markStarted();
        resolve({ kind: 'error', message: 'emulator stopped' });
        return;
      }
      const secure = attempt.url.protocol === 'https:';
      let request: http.ClientRequest;
      try {
        request = (secure ? https : http).request(attempt.url, {
          method: attempt.method,
          headers: attempt.headers,
          agent: secure ? this.httpsAgent : this.httpAgent,
        });
      } catch (error) {
        markStarted();
        resolve({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
        return;
      }
      this.active.add(request);
      let settled = false;
      const finish = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        this.deadlines.delete(deadline);
        this.active.delete(request);
        markStarted();
        resolve(outcome);
      };
      const deadline = this.clock.setTimer(() => {
        finish({ kind: 'deadline' });
        request.destroy();
      }, attempt.deadlineMs);
      this.deadlines.add(deadline);

      // Started = connected (or flushed): a target slow to read a large body must not hold it up.
      request.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', markStarted);
        else markStarted();
      });
      request.on('response', (response) => {
        const retryAfter = response.headers['retry-after'];
        const outcome: AttemptOutcome = { kind: 'response', httpStatus: response.statusCode ?? 0, retryAfter };
        // The attempt ends when the whole response has arrived; its body is not kept.
        response.on('end', () => finish(outcome));
        response.on('close', () => finish(outcome));
        response.resume();
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        finish({ kind: 'error', message: error.code ? `${error.code}: ${error.message}` : error.message });
      });
      request.end(attempt.body ?? undefined, () => markStarted());
    });
    return { started, done };
  }

  /** Aborts attempts under way and closes every connection. */
  close(): void {
    this.closed = true;
    for (const timer of this.deadlines) timer.cancel();
    this.deadlines.clear();
    for (const request of this.active) request.destroy();
    this.active.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
