/**
 * Key layout of the Redis adapter. Every key of one task (record, reference, payload, outbox
 * entry) carries the same hash tag, `{<tag>}`, so a script or a MULTI touching them is
 * single-slot and works unchanged on Redis Cluster. Index keys (`<prefix>:idx:*`) are shared by
 * all tasks and live in other slots.
 *
 *   <prefix>:{<tag>}:task:<id>          hash      the task record (see codec.ts)
 *   <prefix>:{<tag>}:ref:<reference>    hash      { id, key }: newest task created with it
 *   <prefix>:{<tag>}:payload:<id>       string    payload bytes, PX time-to-live
 *   <prefix>:outbox / :outbox:entries   zset/hash outbox (standalone); on Cluster one pair per
 *   <prefix>:{<tag>}:outbox[:entries]             slot tag, listed in <prefix>:outbox:slots
 *   <prefix>:idx:all|status:<s>|queue:<q>|task:<name>|ref:<reference>|iteration:<id>
 *                                       zset      listing indexes, lexicographic members
 *                                                 "<createdAt, 15 digits>:<id>", all scores 0
 *   <prefix>:idx:expiry                 zset      sweep entries scored by expiresAt
 *
 * A tag is a short base-62 string naming one of the 16384 cluster hash slots: a task created
 * with a reference gets the tag of the reference's own slot (Redis' hash-tag rules apply, so a
 * reference like "{order:42}:receipt" lands next to the user's "{order:42}" keys), a task
 * without one gets the tag of a random slot. Task ids are "<tag>_<random>".
 */
import { randomBytes, randomInt } from 'node:crypto';
import { CloudDeferError } from '../../src/core/errors.js';
import { TASK_STATUSES, type TaskStatus } from '../../src/core/records.js';

export const SLOT_COUNT = 16384;

/** The order in which scripts receive the six status index keys (see lua/includes/indexes.lua). */
export const STATUS_INDEX_ORDER: readonly TaskStatus[] = TASK_STATUSES;

const CRC16_TABLE = (() => {
  // CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys with.
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The cluster slot of a key, honouring a `{hash tag}` the way Redis does. */
export function hashSlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // '{'
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOT_COUNT;
  }
  return crc16(bytes) % SLOT_COUNT;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
let slotTags: string[] | undefined;

/** The shortest base-62 string that hashes to `slot` (1 to 3 characters; computed once). */
export function slotTag(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(SLOT_COUNT);
    let missing = SLOT_COUNT;
    const visit = (candidate: string): void => {
      const slot = crc16(Buffer.from(candidate, 'latin1')) % SLOT_COUNT;
      if (tags[slot] === undefined) {
        tags[slot] = candidate;
        missing -= 1;
      }
    };
    for (const a of BASE62) visit(a);
    for (const a of BASE62) for (const b of BASE62) visit(a + b);
    for (const a of BASE62) for (const b of BASE62) for (const c of BASE62) if (missing > 0) visit(a + b + c);
    if (missing > 0) throw new Error('cloud-defer/redis: could not name every cluster slot with a short tag.');
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** The tag of a task id: the text before its first "_" ("<tag>_<random>"), else the whole id. */
export function tagOfId(id: string): string {
  const cut = id.indexOf('_');
  return cut > 0 ? id.slice(0, cut) : id;
}

export function tagOfReference(reference: string): string {
  return slotTag(hashSlot(reference));
}

/** A task id whose tag puts the task in its reference's slot, or in a random slot. */
export function newTaskId(reference: string | undefined): string {
  const tag = reference === undefined ? slotTag(randomInt(SLOT_COUNT)) : tagOfReference(reference);
  return `${tag}_${randomBytes(15).toString('base64url')}`;
}

/** Index members sort newest first under ZRANGE BYLEX REV: fixed-width createdAt, then the id. */
const CREATED_AT_DIGITS = 15;

export function indexMember(createdAt: number, id: string): string {
  if (!Number.isSafeInteger(createdAt) || createdAt < 0 || createdAt >= 10 ** CREATED_AT_DIGITS) {
    throw new CloudDeferError('INVALID_OPTION', `createdAt must be a whole number of epoch milliseconds (got ${createdAt}).`);
  }
  return `${String(createdAt).padStart(CREATED_AT_DIGITS, '0')}:${id}`;
}

export function parseIndexMember(member: string): { createdAt: number; id: string } {
  return { createdAt: Number(member.slice(0, CREATED_AT_DIGITS)), id: member.slice(CREATED_AT_DIGITS + 1) };
}

/** What a listing filter narrows by; each has an index. */
export type IndexKind = 'all' | 'status' | 'queue' | 'task' | 'ref' | 'iteration';

export class KeyLayout {
  constructor(
    readonly prefix: string,
    /** The client's own `keyPrefix` option: part of every key name a script stores as data. */
    readonly clientKeyPrefix: string,
    /** On Cluster the outbox is split per slot tag (see outboxKeys). */
    readonly cluster: boolean,
  ) {
    if (!prefix || /[{}]/.test(prefix)) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `The Redis key prefix must be non-empty and free of "{" and "}" (got "${prefix}"): braces would change the keys' hash slots.`,
      );
    }
  }

  task(id: string): string {
    return `${this.prefix}:{${tagOfId(id)}}:task:${id}`;
  }

  reference(reference: string): string {
    return `${this.prefix}:{${tagOfReference(reference)}}:ref:${reference}`;
  }

  payload(id: string): string {
    return `${this.prefix}:{${tagOfId(id)}}:payload:${id}`;
  }

  /** Outbox keys for a task: one global pair on a single node, the task's slot pair on Cluster. */
  outboxKeys(taskId: string): { index: string; entries: string; tag: string } {
    return this.outboxKeysForTag(this.cluster ? tagOfId(taskId) : undefined);
  }

  outboxKeysForTag(tag: string | undefined): { index: string; entries: string; tag: string } {
    const base = tag === undefined ? `${this.prefix}:outbox` : `${this.prefix}:{${tag}}:outbox`;
    return { index: base, entries: `${base}:entries`, tag: tag ?? '' };
  }

  /** Cluster only: the slot tags that have ever held outbox entries. */
  outboxSlots(): string {
    return `${this.prefix}:outbox:slots`;
  }

  index(kind: IndexKind, value?: string): string {
    return kind === 'all' ? `${this.prefix}:idx:all` : `${this.prefix}:idx:${kind}:${value}`;
  }

  statusIndexes(): string[] {
    return STATUS_INDEX_ORDER.map((status) => this.index('status', status));
  }

  expiryIndex(): string {
    return `${this.prefix}:idx:expiry`;
  }

  /** A key name as the server sees it, for key names a script keeps as data. */
  stored(key: string): string {
    return this.clientKeyPrefix + key;
  }
}
