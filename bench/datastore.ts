/**
 * Datastore benchmarks (issue 6), on the test emulator (or the one DATASTORE_EMULATOR_HOST names):
 * defer() with Datastore state against defer() with memory state (paused queue, as bench/redis.ts);
 * and deferIteration over a kind against a plain loop reading the same kind in the same pages.
 * The emulator runs in this process and re-runs a query over the whole kind for every batch, so
 * the figures say what the adapter adds on this set-up, not what Datastore itself does. When
 * gcloud is installed, the same figures are then taken on Google's Firestore emulator in Datastore
 * mode (started by the test harness), with fewer items, beside ours.
 */
import type { Datastore } from '@google-cloud/datastore';
import { datastoreQuery, datastoreQuerySource, datastoreStores } from '../adapters/datastore/index.js';
import { memoryStores } from '../adapters/memory/index.js';
import { createDeferred } from '../src/index.js';
import { deferRate, median, serveDeferred } from './common.js';
import { datastoreForTests, type DatastoreForTests } from '../test/emulators/datastore/harness.js';
import { gcloudPresent } from '../test/emulators/google.js';
import { fillKind } from '../test/datastore/entities.js';
import type { BenchResult } from './types.js';

const SHARDS = 5;
const PAGE = 1000;

interface Sizes {
  defers: number;
  items: number;
  rounds: number;
}
const OURS: Sizes = { defers: 2000, items: 20_000, rounds: 3 };
const GOOGLES: Sizes = { defers: 500, items: 5_000, rounds: 1 };

/** The baseline: one range over the whole kind, read page by page, a no-op per item. */
async function plainLoop(datastore: Datastore, kind: string, ITEMS: number): Promise<number> {
  const source = datastoreQuerySource(datastore);
  const noop = (_item: unknown) => undefined;
  const started = performance.now();
  const [range] = await source.split({ kind, select: 'id' }, 1);
  let after: string | undefined;
  for (;;) {
    const page = await source.read(range!, after, PAGE);
    for (const item of page.items) {
      noop(item.value);
      after = item.key;
    }
    if (page.done) break;
  }
  return (ITEMS / (performance.now() - started)) * 1000;
}

async function iterate(datastore: Datastore, kind: string, ITEMS: number): Promise<number> {
  const stores = datastoreStores({ datastore });
  const deferred = createDeferred({ logger: false, stores, sources: [stores.source] });
  const callback = deferred.task('noop', (_item: string) => undefined);
  const finalize = deferred.task('done', () => undefined);
  const app = await serveDeferred(deferred);
  const started = performance.now();
  const info = await deferred.deferIteration(datastoreQuery(kind, { select: 'id' }), callback, finalize, { shards: SHARDS, pageSize: PAGE });
  await info.wait({ timeoutMs: 120_000 });
  const rate = (ITEMS / (performance.now() - started)) * 1000;
  await app.close();
  return rate;
}

export async function benchDatastore(): Promise<BenchResult[]> {
  const results = await measure(await datastoreForTests(), OURS);
  if (gcloudPresent())
    results.push(...(await measure(await datastoreForTests({ backend: 'datastore-mode' }), GOOGLES, " (Google's emulator, Datastore mode)")));
  return results;
}

async function measure(env: DatastoreForTests, { defers: DEFERS, items: ITEMS, rounds: ROUNDS }: Sizes, label = ''): Promise<BenchResult[]> {
  try {
    const memoryRates: number[] = [];
    const datastoreRates: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      memoryRates.push(await deferRate(memoryStores(), DEFERS));
      datastoreRates.push(await deferRate(datastoreStores({ datastore: env.datastore }), DEFERS));
    }
    const kind = await fillKind(
      env.datastore,
      Array.from({ length: ITEMS }, (_, i) => `item-${String(i).padStart(6, '0')}`),
    );
    const loops: number[] = [];
    const ours: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      loops.push(await plainLoop(env.datastore, kind, ITEMS));
      ours.push(await iterate(env.datastore, kind, ITEMS));
    }
    const [memRate, dsRate, loopRate, itRate] = [median(memoryRates), median(datastoreRates), median(loops), median(ours)];
    return [
      {
        name: `defer() with Datastore state (paused queue, ${label ? "Google's emulator in Datastore mode" : 'in-process Datastore emulator'})`,
        value: Math.round(dsRate),
        unit: 'tasks/s',
        baseline: { name: 'defer() with memory state, same emulator set-up', value: Math.round(memRate) },
        ratio: +(dsRate / memRate).toFixed(3),
        notes: `${DEFERS} defers x ${ROUNDS} rounds, 32 in flight, median; each defer is one Commit (insert) to ${label ? "Google's emulator (a Java process of its own)" : 'the emulator in this process'}`,
      },
      {
        name: `deferIteration over a Datastore kind, ${ITEMS.toLocaleString('en')} entities, ${SHARDS} shards, pages of ${PAGE}${label}`,
        value: Math.round(itRate),
        unit: 'items/s',
        baseline: { name: 'plain loop reading the same kind through the same source in the same pages, one process', value: Math.round(loopRate) },
        ratio: +(itRate / loopRate).toFixed(3),
        notes: `median of ${ROUNDS} interleaved rounds, no-op callback; from deferIteration() to finalize, Datastore stores${label ? '' : '; the emulator re-scans the kind for every 300-result batch, which dominates both figures'}`,
      },
    ];
  } finally {
    await env.stop();
  }
}
