/**
 * A load generator run as a child process (so it does not share the server's event loop):
 * POSTs each body in `bodiesFile` to `url` with `concurrency` requests in flight over keep-alive.
 * Prints {"requests":N,"ms":T,"non2xx":K} on stdout.
 */
import * as http from 'node:http';
import { readFileSync } from 'node:fs';

interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  bodiesFile: string;
  concurrency: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  const bodies = (JSON.parse(readFileSync(spec.bodiesFile, 'utf8')) as string[]).map((b) => Buffer.from(b, 'base64'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const url = new URL(spec.url);
  let next = 0;
  let non2xx = 0;
  const post = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { ...spec.headers, 'Content-Length': body.length } },
        (res) => {
          if (res.statusCode! < 200 || res.statusCode! >= 300) non2xx += 1;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    while (next < bodies.length) await post(bodies[next++]!);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const ms = performance.now() - started;
  agent.destroy();
  process.stdout.write(JSON.stringify({ requests: bodies.length, ms, non2xx }) + '\n');
}

void main();
