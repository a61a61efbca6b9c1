/**
 * `npm run bench`: every benchmark, each against a baseline measured in the same run. Prints a
 * table and writes bench-results.json; BENCHMARKS.md records the figures.
 */
import { writeFileSync } from 'node:fs';
import { benchDefer, benchDeferMany, benchFirstDefer, benchHandler } from './engine.js';
import { benchRedis } from './redis.js';
import { benchIteration } from './iteration.js';
import type { BenchResult } from './types.js';

process.env.METADATA_SERVER_DETECTION = 'none';

type Suite = { name: string; run: () => Promise<BenchResult[]> };

async function main(): Promise<void> {
  const only = process.argv[2];
  const suites: Suite[] = [
    { name: 'emulator', run: async () => (await import('./emulator.js')).benchEmulator() },
    { name: 'defer', run: benchDefer },
    { name: 'defer-many', run: benchDeferMany },
    { name: 'first-defer', run: benchFirstDefer },
    { name: 'handler', run: benchHandler },
    { name: 'redis', run: benchRedis },
    { name: 'cpu', run: async () => (await import('./cpu.js')).benchCpu() },
    { name: 'iteration', run: benchIteration },
    { name: 'datastore', run: async () => (await import('./datastore.js')).benchDatastore() },
    { name: 'firestore', run: async () => (await import('./firestore.js')).benchFirestore() },
  ];
  const results: BenchResult[] = [];
  for (const suite of suites) {
    if (only && suite.name !== only) continue;
    process.stdout.write(`running ${suite.name} ...\n`);
    try {
      const figures = await suite.run();
      results.push(...figures);
      for (const r of figures) {
        const base = r.baseline ? ` | baseline ${r.baseline.name}: ${r.baseline.value} | ratio ${r.ratio}` : '';
        process.stdout.write(`  ${r.name}: ${r.value} ${r.unit}${base}${r.target ? ` | target ${r.target}` : ''}\n`);
      }
    } catch (err) {
      process.stdout.write(`  ${suite.name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    }
  }
  writeFileSync('bench-results.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2));
}

// Exit when done: a client library may keep a socket or timer open after its bench closed it.
void main().finally(() => process.exit());
