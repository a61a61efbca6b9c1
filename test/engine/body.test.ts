/** Request bodies: behind other middleware, and refused ones that must not be read. */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import express from 'express';
import request from 'supertest';
import { createDeferred, deferredMiddleware } from '../../src/index.js';
import { eventually, recordingLogger, startApp, type Framework, type TestApp } from '../helpers/app.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';

describe('task handler behind a body parser', () => {
  it('answers (does not hang) when express.json() already consumed a body that is no envelope', async () => {
    const logger = recordingLogger();
    const deferred = createDeferred({ logger, mode: 'embedded', auth: { mode: 'none' }, target: { url: 'http://127.0.0.1:9/x' } });
    const app = express();
    app.use(express.json());
    app.use(deferredMiddleware(deferred));
    const res = await request(app).post(deferred.handlerPath).set('Content-Type', 'application/json').send('{}').timeout(5_000);
    assert.equal(res.status, 200, 'an undecodable envelope is acknowledged, never retried');
    assert.ok(logger.lines.some((l) => l.level === 'error' && /undecodable/.test(l.message)));
  });
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CHUNK = 64 * 1024;

interface Cut {
  /**
   * Body bytes the client handed to its kernel before the connection was cut. This includes what
   * the two kernels buffered without the server reading it: on loopback (64 KiB segments) that
   * alone is up to about 4 MiB, so the server's own count is the one held to 2 MiB.
   */
  written: number;
  /** Bytes the server process read from its socket (headers included). */
  serverRead: number;
  /** What the server answered (status line and headers). */
  answer: string;
}

/**
 * Sends `head`, then streams up to `total` body bytes (one reused 64 KiB buffer, so nothing near
 * 2 GiB is ever allocated), honouring back-pressure, until the server closes the connection.
 */
function streamUntilCut(server: TestApp['server'], port: number, head: string, total: number, chunked: boolean): Promise<Cut> {
  const data = Buffer.alloc(CHUNK, 0x61);
  const frame = chunked ? Buffer.concat([Buffer.from(`${CHUNK.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data;
  let accepted: net.Socket | undefined;
  server.once('connection', (s: net.Socket) => (accepted = s));
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let written = 0;
    let answer = '';
    let closed = false;
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      wake?.();
      resolve({ written, answer, serverRead: accepted?.bytesRead ?? -1 });
    });
    socket.on('drain', () => wake?.());
    socket.once('connect', async () => {
      socket.write(head);
      let queued = 0;
      while (!closed && queued < total) {
        queued += data.length;
        const more = socket.write(frame, (err) => {
          if (!err) written += data.length;
        });
        if (!more) await new Promise<void>((r) => (wake = r));
      }
      if (!closed) socket.end();
    });
  });
}

/** The server read less than 2 MiB of the 2 GiB; what the client could hand its kernel is bounded by the socket buffers. */
function assertCut(cut: Cut): void {
  assert.ok(cut.serverRead >= 0, 'the server saw the connection');
  assert.ok(cut.serverRead < 2 * MiB, `the server read ${cut.serverRead} bytes`);
  assert.ok(cut.written < 8 * MiB, `the client could write ${cut.written} bytes (socket buffers only)`);
  if (process.env.CLOUD_DEFER_PRINT_FIGURES) console.log(`      server read ${cut.serverRead} B, client wrote ${cut.written} B`);
}

for (const framework of ['express', 'koa'] as Framework[]) {
  describe(`refused requests are not read (${framework})`, function () {
    this.timeout(60_000);
    let app: TestApp;
    let recorder: Recorder;
    let token: string;
    let port: number;
    let runs = 0;

    before(async () => {
      recorder = await startRecorder();
      app = await startApp(framework, { maxBodyBytes: 256 * 1024 }, (d) => d.task('count', () => void (runs += 1)));
      port = Number(new URL(app.baseUrl).port);
      await app.deferred.defer('count', [], { url: recorder.url, audience: app.handlerUrl });
      const captured = await eventually(() => recorder.requests[0], 'a signed delivery');
      token = String(captured.headers.authorization);
    });
    after(async () => {
      await app.close();
      await recorder.close();
    });

    const head = (headers: string[]): string =>
      [`POST ${app.deferred.handlerPath} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Content-Type: application/octet-stream', ...headers, '', ''].join('\r\n');

    it('a 2 GiB body after a 401: answered with Connection: close, and the server stops reading within 2 MiB', async () => {
      const cut = await streamUntilCut(app.server, port, head(['Transfer-Encoding: chunked']), 2 * GiB, true);
      assert.match(cut.answer, /^HTTP\/1\.1 401 /);
      assert.match(cut.answer, /\r\nConnection: close\r\n/i);
      assertCut(cut);
      assert.equal(runs, 0);
    });

    it('a declared 10 GiB Content-Length: 413 before any of the body is read, and the connection is cut', async () => {
      const cut = await streamUntilCut(app.server, port, head([`Authorization: ${token}`, `Content-Length: ${10 * GiB}`]), 2 * GiB, false);
      assert.match(cut.answer, /^HTTP\/1\.1 413 /);
      assert.match(cut.answer, /\r\nConnection: close\r\n/i);
      assertCut(cut);
    });

    it('a chunked body that grows past maxBodyBytes: 413, and reading stops there', async () => {
      const cut = await streamUntilCut(app.server, port, head([`Authorization: ${token}`, 'Transfer-Encoding: chunked']), 2 * GiB, true);
      assert.match(cut.answer, /^HTTP\/1\.1 413 /);
      assert.match(cut.answer, /\r\nConnection: close\r\n/i);
      assertCut(cut);
      assert.equal(runs, 0);
    });

    it('a 403 (a forged token) closes the connection too', async () => {
      const res = await request(app.server)
        .post(app.deferred.handlerPath)
        .set('Authorization', 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln')
        .send(Buffer.alloc(1024));
      assert.equal(res.status, 403);
      assert.equal(res.headers.connection, 'close');
    });
  });
}
