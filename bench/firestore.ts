/**
 * Firestore benchmarks (issue 7): defer() with Firestore state against defer() with memory state
 * (paused queue, as bench/redis.ts deferRate), and deferIteration over a Firestore collection
 * against a plain loop reading the same source in the same pages, all in one run.
 *
 * Firestore is the in-process test emulator (test/emulators/firestore), or the emulator named by
 * FIRESTORE_EMULATOR_HOST. The in-process one shares this process's CPU with the engine, and its
 * queries scan every stored document, so the figures say more about the adapter's round trips
 * than about Firestore's own speed. When gcloud is installed, the same figures are then taken on
 * Google's emulator (Firestore mode, started by the test harness), with fewer items: it is a Java
 * process of its own, far slower per call, and its figures sit beside ours.
 */
import type { Firestore } from '@google-cloud/firestore';
import { firestoreQuery, firestoreQuerySource, firestoreStores, type FirestoreStores } from '../adapters/firestore/index.js';
import { stagedDefer } from '../test/firestore/records.js';
import { memoryStores } from '../adapters/memory/index.js';
import { createDeferred } from '../src/index.js';
import { firestoreForTests, type FirestoreForTests } from '../test/emulators/firestore/harness.js';
import { gcloudPresent } from '../test/emulators/google.js';
import { deferRate, median, serveDeferred } from './common.js';
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

async function fill(firestore: Firestore, collection: string, items: number): Promise<void> {
  for (let start = 0; start < items; start += 500) {
    const batch = firestore.batch();
    for (let i = start; i < Math.min(start + 500, items); i += 1)
      batch.set(firestore.collection(collection).doc(`item-${String(i).padStart(6, '0')}`), { n: i });
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

/**
 * What the relay adds to a transactional defer in the user's own runTransaction: from
 * runTransaction resolving to the enqueue (afterCommit) running, against the whole
 * stores.transaction() call, whose enqueue runs before it resolves.
 */
async function relayLatency(stores: FirestoreStores, firestore: Firestore, samples: number): Promise<{ relay: number; runner: number }> {
  const hook = stores.transactions[0];
  const relay: number[] = [];
  const runner: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    let enqueued!: (at: number) => void;
    const at = new Promise<number>((resolve) => (enqueued = resolve));
    await firestore.runTransaction(async (tx) => hook.stage(tx, stagedDefer(), async () => enqueued(performance.now())));
    const committed = performance.now();
    relay.push((await at) - committed);
    const started = performance.now();
    await stores.transaction(async (tx) => hook.stage(tx, stagedDefer(), async () => undefined));
    runner.push(performance.now() - started);
  }
  return { relay: median(relay), runner: median(runner) };
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
  const results = await measure(await firestoreForTests(), OURS);
  if (gcloudPresent()) results.push(...(await measure(await firestoreForTests({ backend: 'google' }), GOOGLES, " (Google's Firestore emulator)")));
  return results;
}

async function measure(env: FirestoreForTests, { defers: DEFERS, items: ITEMS, rounds }: Sizes, label = ''): Promise<BenchResult[]> {
  const prefix = `${env.prefix}bench`;
  try {
    const memoryRates: number[] = [];
    const firestoreRates: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      memoryRates.push(await deferRate(memoryStores(), DEFERS));
      firestoreRates.push(await deferRate(firestoreStores({ firestore: env.firestore, collectionPrefix: `${prefix}${round}` }), DEFERS));
    }
    const collection = `${prefix}Items`;
    await fill(env.firestore, collection, ITEMS);
    const loops: number[] = [];
    const ours: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      loops.push(await plainLoop(env.firestore, collection));
      ours.push(await iterate(env.firestore, collection, `${prefix}It${round}`));
    }
    const latencyStores = firestoreStores({ firestore: env.firestore, collectionPrefix: `${prefix}Relay` });
    const latency = await relayLatency(latencyStores, env.firestore, 50);
    await latencyStores.close();
    const memRate = median(memoryRates);
    const fsRate = median(firestoreRates);
    const loopMs = median(loops);
    const oursMs = median(ours);
    const where = env.external ? `the emulator at ${env.address}` : 'the in-process test emulator';
    return [
      {
        name: `defer() with Firestore state (paused queue)${label}`,
        value: Math.round(fsRate),
        unit: 'tasks/s',
        baseline: { name: 'defer() with memory state, same emulator set-up', value: Math.round(memRate) },
        ratio: +(fsRate / memRate).toFixed(3),
        notes: `${DEFERS} defers x ${rounds} interleaved rounds, 32 in flight, median; Firestore is ${where}`,
      },
      {
        name: `transactional defer in the user's own runTransaction: commit to enqueue (the relay)${label}`,
        value: +latency.relay.toFixed(1),
        unit: 'ms',
        baseline: { name: 'a whole stores.transaction() with one defer (its enqueue runs before it resolves)', value: +latency.runner.toFixed(1) },
        notes: `median of 50; runTransaction resolved -> afterCommit ran, the relay polling the outbox document; Firestore is ${where}`,
      },
      {
        name: `deferIteration, ${ITEMS.toLocaleString('en')} documents over ${SHARDS} shards, no-op callback (Firestore collection source, Firestore stores, embedded Cloud Tasks emulator)${label}`,
        value: Math.round(ITEMS / (oursMs / 1000)),
        unit: 'items/s',
        baseline: { name: 'plain loop over the same source in one process, same page size', value: Math.round(ITEMS / (loopMs / 1000)) },
        ratio: +(loopMs / oursMs).toFixed(3),
        notes: `median of ${rounds} rounds; ${PAGE} documents per page; wall time from deferIteration() to finalize done; Firestore is ${where}`,
      },
    ];
  } finally {
    if (env.external) await env.clear();
    await env.stop();
  }
}
