/**
 * Firestore benchmarks (issue 7): defer() with Firestore state against defer() with memory state
 * (paused queue, as bench/redis.ts deferRate), and deferIteration over a Firestore collection
 * against a plain loop reading the same source in the same pages, all in one run.
 *
 * Firestore is the in-process test emulator (test/emulators/firestore), or the emulator named by
 * FIRESTORE_EMULATOR_HOST. The in-process one shares this process's CPU with the engine, and its
 * queries scan every stored document, so the figures say more about the adapter's round trips
 * than about Firestore's own speed.
 */
import type { Firestore } from '@google-cloud/firestore';
import { firestoreQuery, firestoreQuerySource, firestoreStores } from '../adapters/firestore/index.js';
import { memoryStores } from '../adapters/memory/index.js';
import { createDeferred } from '../src/index.js';
import { firestoreForTests } from '../test/emulators/firestore/harness.js';
import { deferRate, median, serveDeferred } from './common.js';
import type { BenchResult } from './types.js';

const DEFERS = 2000;
const ITEMS = 20_000;
const SHARDS = 5;
const PAGE = 1000;

async function fill(firestore: Firestore, collection: string): Promise<void> {
  for (let start = 0; start < ITEMS; start += 500) {
    const batch = firestore.batch();
    for (let i = start; i < Math.min(start + 500, ITEMS); i += 1) batch.set(firestore.collection(collection).doc(`item-${String(i).padStart(6, '0')}`), { n: i });
    await batch.commit();
  }
}

/** The baseline: the whole collection through the same source, page by page, a no-op per item. */
async function plainLoop(firestore: Firestore, collection: string): Promise<number> {
  const source = firestoreQuerySource(firestore);
  const started = performance.now();
  const [range] = await source.split(firestoreQuery(collection, { select: 'id' }).spec, 1);
  let after: string | undefined;
  for (;;) {
    const page = await source.read(range!, after, PAGE);
    after = page.items[page.items.length - 1]?.key ?? after;
    if (page.done) break;
  }
  return performance.now() - started;
}

async function iterate(firestore: Firestore, collection: string, prefix: string): Promise<number> {
  const stores = firestoreStores({ firestore, collectionPrefix: prefix });
  const deferred = createDeferred({ logger: false, stores, sources: [stores.source] });
  const callback = deferred.task('noop', (_item: string) => undefined);
  const finalize = deferred.task('done', () => undefined);
  const served = await serveDeferred(deferred);
  const started = performance.now();
  const info = await deferred.deferIteration(firestoreQuery(collection, { select: 'id' }), callback, finalize, { shards: SHARDS, pageSize: PAGE });
  await info.wait({ timeoutMs: 120_000 });
  const ms = performance.now() - started;
  await served.close();
  return ms;
}

export async function benchFirestore(): Promise<BenchResult[]> {
  const env = await firestoreForTests();
  const prefix = `${env.prefix}bench`;
  try {
    const memoryRates: number[] = [];
    const firestoreRates: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      memoryRates.push(await deferRate(memoryStores(), DEFERS));
      firestoreRates.push(await deferRate(firestoreStores({ firestore: env.firestore, collectionPrefix: `${prefix}${round}` }), DEFERS));
    }
    const collection = `${prefix}Items`;
    await fill(env.firestore, collection);
    const loops: number[] = [];
    const ours: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      loops.push(await plainLoop(env.firestore, collection));
      ours.push(await iterate(env.firestore, collection, `${prefix}It${round}`));
    }
    const memRate = median(memoryRates);
    const fsRate = median(firestoreRates);
    const loopMs = median(loops);
    const oursMs = median(ours);
    const where = env.external ? `the emulator at ${env.address}` : 'the in-process test emulator';
    return [
      {
        name: 'defer() with Firestore state (paused queue)',
        value: Math.round(fsRate),
        unit: 'tasks/s',
        baseline: { name: 'defer() with memory state, same emulator set-up', value: Math.round(memRate) },
        ratio: +(fsRate / memRate).toFixed(3),
        notes: `${DEFERS} defers x 3 interleaved rounds, 32 in flight, median; Firestore is ${where}`,
      },
      {
        name: `deferIteration, ${ITEMS.toLocaleString('en')} documents over ${SHARDS} shards, no-op callback (Firestore collection source, Firestore stores, embedded Cloud Tasks emulator)`,
        value: Math.round(ITEMS / (oursMs / 1000)),
        unit: 'items/s',
        baseline: { name: 'plain loop over the same source in one process, same page size', value: Math.round(ITEMS / (loopMs / 1000)) },
        ratio: +(loopMs / oursMs).toFixed(3),
        notes: `median of 3 rounds; ${PAGE} documents per page; wall time from deferIteration() to finalize done; Firestore is ${where}`,
      },
    ];
  } finally {
    if (env.external) await env.clear();
    await env.stop();
  }
}
