/**
 * Iteration sources on Redis: a sorted set (members in score order, optionally a score range)
 * and a key pattern (SCAN). Register them with createDeferred({ sources: redisSources(client) }).
 */
import type { Cluster, Redis } from 'ioredis';
import type { IterationSource, SourcePage, SourceSpec } from '../../src/core/iteration.js';

type RedisClient = Redis | Cluster;

export const REDIS_SORTED_SET = 'redis-sorted-set';
export const REDIS_KEY_PATTERN = 'redis-key-pattern';

export interface SortedSetSpec {
  key: string;
  /** Score range, inclusive (default -inf..+inf): the "filter" of this source. */
  min?: number;
  max?: number;
}

/** A shard: members whose (score, member) lies after `from` and up to `to`. */
interface SortedSetRange {
  key: string;
  min: number;
  max: number;
  from?: [number, string];
  to?: [number, string];
}

/** Keys sort as "<score, fixed width>\u0000<member>" so the cursor orders like the set. */
function keyOf(score: number, member: string): string {
  // Map the double to a string that sorts like the number (sign flip + hex of the bits).
  const buf = Buffer.alloc(8);
  buf.writeDoubleBE(score);
  if (buf[0]! & 0x80) for (let i = 0; i < 8; i += 1) buf[i] = ~buf[i]! & 0xff;
  else buf[0] = buf[0]! | 0x80;
  return `${buf.toString('hex')}\u0000${member}`;
}

function parseKey(key: string): [number, string] {
  const cut = key.indexOf('\u0000');
  const buf = Buffer.from(key.slice(0, cut), 'hex');
  if (buf[0]! & 0x80) buf[0] = buf[0]! & 0x7f;
  else for (let i = 0; i < 8; i += 1) buf[i] = ~buf[i]! & 0xff;
  return [buf.readDoubleBE(), key.slice(cut + 1)];
}

const after = (a: [number, string], b: [number, string]): boolean => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

function pairs(reply: string[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let i = 0; i < reply.length; i += 2) out.push([Number(reply[i + 1]), reply[i]!]);
  return out;
}

export function redisSortedSetSource(client: RedisClient): IterationSource<SortedSetSpec, SortedSetRange, string> {
  return {
    kind: REDIS_SORTED_SET,
    async split(spec, shards) {
      const min = spec.min ?? -Infinity;
      const max = spec.max ?? Infinity;
      const lo = min === -Infinity ? '-inf' : String(min);
      const hi = max === Infinity ? '+inf' : String(max);
      const total = await client.zcount(spec.key, lo, hi);
      if (total === 0) return [];
      const count = Math.min(shards, total);
      // Boundaries at evenly spaced ranks, read once; shards then walk by (score, member).
      const bounds: Array<[number, string]> = [];
      for (let i = 1; i < count; i += 1) {
        const rank = Math.floor((i * total) / count) - 1;
        const [member, score] = await client.zrange(spec.key, lo, hi, 'BYSCORE', 'LIMIT', rank, 1, 'WITHSCORES');
        bounds.push([Number(score), member!]);
      }
      return Array.from({ length: count }, (_, i) => ({
        key: spec.key,
        min,
        max,
        ...(i > 0 ? { from: bounds[i - 1]! } : {}),
        ...(i < count - 1 ? { to: bounds[i]! } : {}),
      }));
    },
    async read(range, afterKey, limit): Promise<SourcePage<string>> {
      const start = afterKey !== undefined ? parseKey(afterKey) : range.from;
      const lo = start ? String(start[0]) : range.min === -Infinity ? '-inf' : String(range.min);
      const hi = range.to ? String(range.to[0]) : range.max === Infinity ? '+inf' : String(range.max);
      const items: SourcePage<string>['items'] = [];
      let offset = 0;
      // Members sharing the start score are re-read and skipped; read until a page is full.
      for (;;) {
        const batch = pairs(await client.zrange(range.key, lo, hi, 'BYSCORE', 'LIMIT', offset, limit, 'WITHSCORES'));
        offset += batch.length;
        for (const pair of batch) {
          if (start && !after(pair, start)) continue;
          if (range.to && after(pair, range.to)) return { items, done: true };
          items.push({ key: keyOf(pair[0], pair[1]), value: pair[1] });
          if (items.length === limit) return { items, done: false };
        }
        if (batch.length < limit) return { items, done: true };
      }
    },
  };
}

export interface KeyPatternSpec {
  /** A SCAN MATCH pattern, e.g. "user:*". */
  pattern: string;
}

interface KeyListRange {
  keys: string[];
}

/**
 * Keys matching a pattern. SCAN gives no order and no stable cursor across shards, so the start
 * task scans once, sorts, and hands each shard its own slice; shards then walk it by key.
 */
export function redisKeyPatternSource(client: RedisClient): IterationSource<KeyPatternSpec, KeyListRange, string> {
  return {
    kind: REDIS_KEY_PATTERN,
    async split(spec, shards) {
      const nodes = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
      const found = new Set<string>();
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', spec.pattern, 'COUNT', 1000);
          for (const key of keys) found.add(key);
          cursor = next;
        } while (cursor !== '0');
      }
      const keys = [...found].sort();
      const size = Math.ceil(keys.length / shards);
      const ranges: KeyListRange[] = [];
      for (let i = 0; i < keys.length; i += size) ranges.push({ keys: keys.slice(i, i + size) });
      return ranges;
    },
    async read(range, afterKey, limit) {
      let start = 0;
      if (afterKey !== undefined) {
        // Binary search: the first key after the cursor.
        let lo = 0;
        let hi = range.keys.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (range.keys[mid]! <= afterKey) lo = mid + 1;
          else hi = mid;
        }
        start = lo;
      }
      const slice = range.keys.slice(start, start + limit);
      return { items: slice.map((key) => ({ key, value: key })), done: start + limit >= range.keys.length };
    },
  };
}

/** Both Redis sources, for createDeferred({ sources }). */
export function redisSources(client: RedisClient): IterationSource[] {
  return [redisSortedSetSource(client) as IterationSource, redisKeyPatternSource(client) as IterationSource];
}

/** deferIteration(sortedSet('jobs', { min, max }), ...) */
export function sortedSet(key: string, range: { min?: number; max?: number } = {}): SourceSpec<SortedSetSpec> {
  return { kind: REDIS_SORTED_SET, spec: { key, ...range } };
}

export function keyPattern(pattern: string): SourceSpec<KeyPatternSpec> {
  return { kind: REDIS_KEY_PATTERN, spec: { pattern } };
}
