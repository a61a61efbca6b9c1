/**
 * TaskCounters on Datastore: one entity per queue, bucket and counter shard, changed in one
 * transaction per attempt (Datastore has no atomic increment outside one). The minute and hour
 * entities of a shard move together; a random shard per attempt spreads the contention, and a
 * transaction that loses (ABORTED) is retried. Entities carry `expiresAt` for sweeps.
 *
 *   const deferred = createDeferred({ stores: datastoreStores({ datastore }), counters: datastoreCounters({ datastore }) });
 */
import type { Datastore, Key } from '@google-cloud/datastore';
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
import { where } from './context.js';
import { kindNames } from './kinds.js';

export interface DatastoreCountersOptions {
  datastore: Datastore;
  /** As datastoreStores' kindPrefix. Default "CloudDefer". */
  kindPrefix?: string;
  namespace?: string;
  /** Entities per bucket (contention spreading). Default 8. */
  shards?: number;
  /** How often record() sweeps expired counter entities (ms); 0 = never (call sweepExpired()). Default 10 min. */
  sweepEveryMs?: number;
}

const OUTCOME_FIELD = { succeeded: 's', failed: 'f', retrying: 'r' } as const;
const ABORTED = 10;
const MAX_ATTEMPTS = 8;
/** Datastore has no expiry of its own: record() removes expired counter entities this often. */
const DEFAULT_SWEEP_EVERY_MS = 10 * 60_000;
const SWEEP_BATCH = 500;

type CounterEntity = Record<string, number | string>;

export class DatastoreTaskCounters implements TaskCounters {
  private lastSweep = 0;

  constructor(
    private readonly datastore: Datastore,
    private readonly kind: string,
    private readonly namespace: string | undefined,
    private readonly shards: number,
    private readonly sweepEveryMs: number = DEFAULT_SWEEP_EVERY_MS,
  ) {}

  private key(queue: string, resolution: CounterResolution, start: number, shard: number): Key {
    const name = `${queue}~${resolution}~${start}~${shard}`;
    return this.namespace ? this.datastore.key({ namespace: this.namespace, path: [this.kind, name] }) : this.datastore.key([this.kind, name]);
  }

  async record(sample: AttemptSample): Promise<void> {
    const shard = Math.floor(Math.random() * this.shards);
    const keys = (['minute', 'hour'] as const).map((resolution) => {
      const step = resolutionMs(resolution);
      const start = Math.floor(sample.at / step) * step;
      return { key: this.key(sample.queue, resolution, start, shard), start, keep: resolution === 'minute' ? MINUTE_RETENTION_MS : HOUR_RETENTION_MS };
    });
    const outcome = OUTCOME_FIELD[sample.outcome];
    const duration = `d${durationBucket(sample.durationMs)}`;
    for (let attempt = 1; ; attempt += 1) {
      const tx = this.datastore.transaction();
      try {
        await tx.run(); // begun explicitly (see REFERENCE: lazily begun transactions fail on Google's emulator)
        const [found] = await tx.get(keys.map((k) => k.key));
        const byName = new Map<string, CounterEntity>();
        for (const entity of found as Array<CounterEntity & { [key: symbol]: Key }>) byName.set(String(entity[this.datastore.KEY]?.name), entity);
        for (const { key, start, keep } of keys) {
          // Plain fields only: the entity's KEY symbol stays behind.
          const data: CounterEntity = Object.fromEntries(Object.entries(byName.get(String(key.name)) ?? { queue: sample.queue, start }));
          data[outcome] = Number(data[outcome] ?? 0) + 1;
          data[duration] = Number(data[duration] ?? 0) + 1;
          data.expiresAt = start + keep;
          tx.save({ key, data, excludeFromIndexes: Object.keys(data).filter((n) => n !== 'expiresAt') });
        }
        await tx.commit();
        if (this.sweepEveryMs > 0 && sample.at - this.lastSweep >= this.sweepEveryMs) {
          this.lastSweep = sample.at;
          void this.sweepExpired(sample.at).catch(() => undefined); // best effort; the next one retries
        }
        return;
      } catch (error) {
        await tx.rollback().catch(() => undefined);
        if ((error as { code?: unknown }).code !== ABORTED || attempt >= MAX_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * 2 ** attempt));
      }
    }
  }

  /** Deletes up to SWEEP_BATCH counter entities whose retention has passed; returns how many. */
  async sweepExpired(now: number = Date.now()): Promise<number> {
    const query = this.namespace ? this.datastore.createQuery(this.namespace, this.kind) : this.datastore.createQuery(this.kind);
    where(query, 'expiresAt', '<', now).select('__key__').limit(SWEEP_BATCH);
    const [entities] = await this.datastore.runQuery(query);
    const keys = (entities as Array<{ [key: symbol]: Key }>).map((e) => e[this.datastore.KEY]!);
    if (keys.length > 0) await this.datastore.delete(keys);
    return keys.length;
  }

  async read(queue: string, resolution: CounterResolution, from: number, to: number): Promise<CounterBucket[]> {
    const step = resolutionMs(resolution);
    const keys: Key[] = [];
    for (let start = Math.ceil(from / step) * step; start < to; start += step) {
      for (let shard = 0; shard < this.shards; shard += 1) keys.push(this.key(queue, resolution, start, shard));
    }
    const rows: CounterEntity[] = [];
    // Lookup takes at most 1000 keys.
    for (let i = 0; i < keys.length; i += 1000) {
      const [found] = await this.datastore.get(keys.slice(i, i + 1000));
      rows.push(...(found as CounterEntity[]));
    }
    return sumCounterRows(rows);
  }
}

export function datastoreCounters(options: DatastoreCountersOptions): DatastoreTaskCounters {
  const shards = options.shards ?? 8;
  if (!Number.isInteger(shards) || shards < 1 || shards > 100) throw new Error('cloud-defer/datastore: counters shards must be a whole number from 1 to 100.');
  const kind = `${kindNames(options.kindPrefix ?? 'CloudDefer').task.replace(/Task$/, '')}Counter`;
  return new DatastoreTaskCounters(options.datastore, kind, options.namespace, shards, options.sweepEveryMs ?? DEFAULT_SWEEP_EVERY_MS);
}
