#!/usr/bin/env node
'use strict';
/*
 * npm test: the suite in two mocha processes at once, then one closing line for CI.
 *
 * The Datastore and Firestore store suites spend most of their time waiting: on Google's
 * emulators every lost round of a contended commit is a lock wait of about 2 s. They run in a
 * second mocha process beside the rest, so the whole suite (both backends, ours and Google's)
 * stays well under 10 minutes on a 2-core machine. The rest streams as it runs; the store
 * suites' report is printed after it, then the SIGKILL test runs alone, then one line
 * "N passed, N failed, N skipped" for all of it.
 *
 *   npm test                      both groups at once
 *   npm test -- --grep lease      one mocha process with .mocharc.json and these arguments
 *   CLOUD_DEFER_TEST_JOBS=1       the two groups one after the other
 */
const { spawn } = require('node:child_process');
const path = require('node:path');
const config = require('../.mocharc.json');

const root = path.join(__dirname, '..');
const mochaBin = require.resolve('mocha/bin/mocha.js');

/**
 * Run alone once both groups are done: the 1,000-task / 20-SIGKILL test counts how often kills cut
 * the same task, and a machine loaded by the two groups makes runs slower and cuts more frequent.
 */
const SOLO_SPECS = ['.build/test/reliability/chaos.test.js'];

/** The files of the store group; everything else (but SOLO_SPECS) is the main group. */
const STORE_SPECS = [
  '.build/test/contract/datastore.test.js',
  '.build/test/contract/firestore.test.js',
  '.build/test/datastore/**/*.test.js',
  '.build/test/firestore/**/*.test.js',
  '.build/test/iteration/datastore*.test.js',
  '.build/test/iteration/firestore*.test.js',
  '.build/test/emulators/**/*.test.js',
  '.build/test/reliability/record-success.test.js',
];

/** .mocharc.json's options other than its spec, as arguments (the groups name their own files). */
function sharedArgs() {
  const args = ['--no-config'];
  for (const file of [config.require ?? []].flat()) args.push('--require', file);
  if (config.reporter) args.push('--reporter', config.reporter);
  if (config.timeout !== undefined) args.push('--timeout', String(config.timeout));
  if (config.exit) args.push('--exit');
  return args;
}

const SUMMARY = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/;

/** Runs mocha with `args`; `live` streams its output, otherwise it is kept for later. */
function runMocha(name, args, live) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [mochaBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const chunks = [];
    const keep = (stream, target) =>
      stream.on('data', (chunk) => {
        chunks.push(chunk);
        if (live) target.write(chunk);
      });
    keep(child.stdout, process.stdout);
    keep(child.stderr, process.stderr);
    child.on('close', (code, signal) => {
      const output = Buffer.concat(chunks).toString();
      const line = output
        .trimEnd()
        .split('\n')
        .reverse()
        .find((l) => SUMMARY.test(l.trim()));
      const match = line && SUMMARY.exec(line.trim());
      resolve({
        name,
        output,
        code: code ?? 1,
        signal,
        counts: match ? { passed: Number(match[1]), failed: Number(match[2]), skipped: Number(match[3] ?? 0) } : undefined,
      });
    });
  });
}

async function main() {
  const extra = process.argv.slice(2);
  if (extra.length > 0) {
    // A chosen subset: one process, mocha's own spec from .mocharc.json unless the arguments name files.
    const result = await runMocha('mocha', extra, true);
    process.exitCode = result.code;
    return;
  }
  const shared = sharedArgs();
  const mainArgs = [...shared, ...[config.spec].flat(), ...[...STORE_SPECS, ...SOLO_SPECS].flatMap((spec) => ['--ignore', spec])];
  const storeArgs = [...shared, ...STORE_SPECS];
  const soloArgs = [...shared, ...SOLO_SPECS];
  const sequential = process.env.CLOUD_DEFER_TEST_JOBS === '1';
  const started = Date.now();
  let results;
  if (sequential) {
    results = [await runMocha('main', mainArgs, true), await runMocha('store suites', storeArgs, true), await runMocha('alone', soloArgs, true)];
  } else {
    const store = runMocha('store suites', storeArgs, false);
    const first = await runMocha('main', mainArgs, true);
    process.stdout.write('\n(the Datastore and Firestore store suites ran beside these; their report follows)\n');
    const second = await store;
    process.stdout.write(second.output);
    process.stdout.write(`\n(then, with nothing beside it: ${SOLO_SPECS.join(', ')})\n`);
    const third = await runMocha('alone', soloArgs, true);
    results = [first, second, third];
  }
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const result of results) {
    if (!result.counts) {
      // A process that died before its summary (a crash, a signal) counts as one failure.
      process.stdout.write(`\n${result.name}: mocha exited (${result.signal ?? `code ${result.code}`}) without a summary line\n`);
      total.failed += 1;
      continue;
    }
    total.passed += result.counts.passed;
    total.failed += result.counts.failed;
    total.skipped += result.counts.skipped;
    if (result.code !== 0 && result.counts.failed === 0) total.failed += 1;
  }
  process.stdout.write(
    `\n(${results.map((r) => `${r.name}: ${r.counts ? `${r.counts.passed} passed, ${r.counts.failed} failed` : 'no summary'}`).join('; ')}; ${Math.round((Date.now() - started) / 1000)} s)\n`,
  );
  process.stdout.write(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
  process.exitCode = total.failed > 0 ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.stdout.write('0 passed, 1 failed, 0 skipped\n');
  process.exitCode = 1;
});
