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
  /** HTTP targets: Cloud Tasks may follow a 3xx Location, and the redirect is not an attempt. */
  followRedirects?: boolean;
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

const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

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
      let settled = false;
      let current: http.ClientRequest | undefined;
      const finish = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        this.deadlines.delete(deadline);
        if (current) this.active.delete(current);
        markStarted();
        resolve(outcome);
      };
      const deadline = this.clock.setTimer(() => {
        finish({ kind: 'deadline' });
        current?.destroy();
      }, attempt.deadlineMs);
      this.deadlines.add(deadline);

      const sendTo = (url: URL, method: string, headers: http.OutgoingHttpHeaders, body: Buffer | null, hops: number): void => {
        if (settled) return;
        const secure = url.protocol === 'https:';
        let request: http.ClientRequest;
        try {
          request = (secure ? https : http).request(url, {
            method,
            headers,
            agent: secure ? this.httpsAgent : this.httpAgent,
          });
        } catch (error) {
          finish({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
          return;
        }
        if (current) this.active.delete(current);
        current = request;
        this.active.add(request);
        // Started = connected (or flushed): a target slow to read a large body must not hold it up.
        request.on('socket', (socket) => {
          if (socket.connecting) socket.once('connect', markStarted);
          else markStarted();
        });
        request.on('response', (response) => {
          const status = response.statusCode ?? 0;
          const location = response.headers.location;
          if (attempt.followRedirects && REDIRECT_STATUSES.has(status) && location && hops < MAX_REDIRECTS) {
            let next: URL | undefined;
            try {
              next = new URL(location, url);
            } catch {
              next = undefined;
            }
            if (next && (next.protocol === 'http:' || next.protocol === 'https:')) {
              const target = next;
              response.on('end', () => {
                const asGet = status === 303 && method !== 'HEAD';
                const nextHeaders: http.OutgoingHttpHeaders = { ...headers };
                // As browsers do: credentials stay with the origin they were meant for.
                if (target.origin !== url.origin) delete nextHeaders['Authorization'];
                if (asGet) {
                  for (const name of Object.keys(nextHeaders)) {
                    if (/^content-(type|length)$/i.test(name)) delete nextHeaders[name];
                  }
                }
                sendTo(target, asGet ? 'GET' : method, nextHeaders, asGet ? null : body, hops + 1);
              });
              response.resume();
              return;
            }
          }
          const outcome: AttemptOutcome = { kind: 'response', httpStatus: status, retryAfter: response.headers['retry-after'] };
          // The attempt ends when the whole response has arrived; its body is not kept.
          response.on('end', () => finish(outcome));
          response.on('close', () => finish(outcome));
          response.resume();
        });
        request.on('error', (error: NodeJS.ErrnoException) => {
          if (current !== request) return;
          finish({ kind: 'error', message: error.code ? `${error.code}: ${error.message}` : error.message });
        });
        request.end(body ?? undefined, () => markStarted());
      };
      sendTo(attempt.url, attempt.method, attempt.headers, attempt.body, 0);
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
