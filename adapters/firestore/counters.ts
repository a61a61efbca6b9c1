/**
 * TaskCounters on Firestore: one document per queue, minute (or hour) and counter shard, bumped
 * with FieldValue.increment in one batch (the minute and hour documents move together). A
 * document takes about one sustained write a second, so each bucket is split over `shards`
 * documents picked at random; a read sums them (60 x shards documents for an hour). Documents
 * carry `expireAt` for a TTL policy on the collection (see docs/firestore.md).
 *
 *   const deferred = createDeferred({ stores: firestoreStores({ firestore }), counters: firestoreCounters({ firestore }) });
 */
import type { Firestore } from '@google-cloud/firestore';
import {
  durationBucket,
  sumCounterRows,
  HOUR_RETENTION_MS,
  MINUTE_RETENTION_MS,
  resolutionMs,
  type AttemptSample,
  type CounterBucket,
  type CounterResolution,
  type TaskCounters,
} from '../../src/core/counters.js';
import { collectionNames } from './documents.js';
import { loadLibrary, type FirestoreLibrary } from './library.js';

export interface FirestoreCountersOptions {
  firestore: Firestore;
  /** Start of the collection name, as firestoreStores' collectionPrefix. Default "cloudDefer". */
  collectionPrefix?: string;
  /** Documents per bucket (write spreading). Default 4. */
  shards?: number;
  library?: FirestoreLibrary;
}

const OUTCOME_FIELD = { succeeded: 's', failed: 'f', retrying: 'r' } as const;

export class FirestoreTaskCounters implements TaskCounters {
  private readonly library: FirestoreLibrary;

  constructor(
    private readonly firestore: Firestore,
    private readonly collection: string,
    private readonly shards: number,
    library: FirestoreLibrary | undefined,
  ) {
    this.library = loadLibrary(firestore, library);
  }

  private doc(queue: string, resolution: CounterResolution, start: number, shard: number) {
    // Queue ids are [A-Za-z0-9-], so "~" cannot clash.
    return this.firestore.collection(this.collection).doc(`${queue}~${resolution}~${start}~${shard}`);
  }

  async record(sample: AttemptSample): Promise<void> {
    const { FieldValue, Timestamp } = this.library;
    const shard = Math.floor(Math.random() * this.shards);
    const batch = this.firestore.batch();
    for (const resolution of ['minute', 'hour'] as const) {
      const step = resolutionMs(resolution);
      const start = Math.floor(sample.at / step) * step;
      const keep = resolution === 'minute' ? MINUTE_RETENTION_MS : HOUR_RETENTION_MS;
      batch.set(
        this.doc(sample.queue, resolution, start, shard),
        {
          queue: sample.queue,
          start,
          [OUTCOME_FIELD[sample.outcome]]: FieldValue.increment(1),
          [`d${durationBucket(sample.durationMs)}`]: FieldValue.increment(1),
          expireAt: Timestamp.fromMillis(start + keep),
        },
        { merge: true },
      );
    }
    await batch.commit();
  }

  async read(queue: string, resolution: CounterResolution, from: number, to: number): Promise<CounterBucket[]> {
    const step = resolutionMs(resolution);
    const refs = [];
    for (let start = Math.ceil(from / step) * step; start < to; start += step) {
      for (let shard = 0; shard < this.shards; shard += 1) refs.push(this.doc(queue, resolution, start, shard));
    }
    if (refs.length === 0) return [];
    const snapshots = await this.firestore.getAll(...refs);
    return sumCounterRows(snapshots.flatMap((snapshot) => snapshot.data() ?? []));
  }
}

export function firestoreCounters(options: FirestoreCountersOptions): FirestoreTaskCounters {
  const shards = options.shards ?? 4;
  if (!Number.isInteger(shards) || shards < 1 || shards > 100) throw new Error('cloud-defer/firestore: counters shards must be a whole number from 1 to 100.');
  const prefix = options.collectionPrefix ?? 'cloudDefer';
  collectionNames(prefix); // the same rule as the stores' collections
  return new FirestoreTaskCounters(options.firestore, `${prefix}Counters`, shards, options.library);
}
