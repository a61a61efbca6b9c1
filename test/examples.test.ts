/**
 * The demos a newcomer starts (examples/express, examples/koa), run as child processes on the built
 * package: each says where the app and its console are and how to stop, numbers attempts from 1,
 * runs its demo task, and reports a busy port in one line instead of crashing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

interface Run {
  output: string;
  code: number | null;
}

/** Starts `file` with `env`; resolves when `until` shows in its output (then stops it with SIGINT, as Ctrl-C does) or when it exits. */
function runDemo(file: string, env: Record<string, string>, until?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stopping = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not get there in 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (until && !stopping && until.test(output)) {
        stopping = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (until && !stopping) reject(new Error(`${file} exited (${code}) before ${until}:\n${output}`));
      else resolve({ output, code });
    });
  });
}

const demos = [
  { name: 'express', file: 'examples/express/app.cjs', ran: /sending the welcome mail to demo-user \(pro\) - task \w+, attempt 1\b/ },
  { name: 'koa', file: 'examples/koa/app.cjs', ran: /resizing demo-image to 64 - task \w+, attempt 1\b/ },
];

describe('examples', () => {
  for (const demo of demos) {
    it(`examples/${demo.name}: prints its URL, the console URL and "Ctrl-C to stop", runs the demo task (attempt 1), stops on Ctrl-C`, async function () {
      this.timeout(40_000);
      const { output, code } = await runDemo(demo.file, { PORT: '0' }, /demo task \S+ succeeded after 1 attempt\(s\)/);
      const base = /example app listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      assert.ok(base, output);
      assert.ok(output.includes(`console: ${base}/_ah/deferred/console/`), output);
      assert.match(output, /Ctrl-C to stop/);
      assert.match(output, demo.ran);
      // The engine is told the port the OS picked: it never claims to deliver to port 0.
      assert.ok(output.includes(`delivering to ${base}/_ah/queue/deferred`), output);
      assert.doesNotMatch(output, /attempt 0\b/);
      assert.equal(code, 0, `Ctrl-C stops it cleanly:\n${output}`);
    });

    it(`examples/${demo.name}: a busy port is reported in one line and exits 1, no stack trace`, async function () {
      this.timeout(40_000);
      const busy = createServer().listen(0, '127.0.0.1');
      await new Promise((resolve) => busy.once('listening', resolve));
      const port = String((busy.address() as { port: number }).port);
      try {
        const { output, code } = await runDemo(demo.file, { PORT: port });
        assert.equal(code, 1, output);
        assert.equal(output.trim(), `port ${port} is busy: stop what uses it or start with PORT=<another port>`);
      } finally {
        busy.close();
      }
    });
  }
});
