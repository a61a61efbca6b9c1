// One port for every client: a TCP listener that reads the first bytes of each connection and hands
// HTTP/2 prior-knowledge connections (the gRPC preface "PRI * HTTP/2.0") to grpc-js through its
// public connection injector, and everything else to an HTTP/1.1 server (REST and firebase-admin).
import * as http from 'node:http';
import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';

const HTTP2_PREFACE_START = Buffer.from('PRI ');

export interface SharedListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function listenShared(host: string, port: number, injector: grpc.ConnectionInjector, restListener: http.RequestListener): Promise<SharedListener> {
  const httpServer = http.createServer({ keepAlive: true }, restListener);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, HTTP2_PREFACE_START.length);
      const http2 = seen.subarray(0, compared).equals(HTTP2_PREFACE_START.subarray(0, compared));
      if (http2 && compared < HTTP2_PREFACE_START.length) return; // need more bytes to tell
      socket.off('data', onData);
      socket.pause();
      socket.unshift(seen);
      if (http2) {
        // Node's HTTP/2 session reads what is buffered on the socket itself; do not resume it here.
        injector.injectConnection(socket);
      } else {
        httpServer.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        injector.destroy();
        httpServer.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}
