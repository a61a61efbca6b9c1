/**
 * Key layout. Every document of one task (record, reference hold, outbox entry) and its payload
 * carry the same hash tag, `{<tag>}`, so one commit touching them is single-slot and runs
 * unchanged on Redis Cluster; an iteration's header and shards share `{<iteration id>}`.
 *
 *   <prefix>:{<tag>}:task:<id>            hash  a document: v (version), d (JSON value), and for
 *   <prefix>:{<tag>}:ref:<reference>      hash    tasks s (status) and e (expiresAt), which the
 *   <prefix>:{<tag>}:outbox:<task id>     hash    commit script compares to keep the indexes
 *   <prefix>:{<iteration id>}:iteration   hash
 *   <prefix>:{<iteration id>}:shard:<i>   hash
 *   <prefix>:{<tag>}:payload:<id>         string payload bytes, PX time-to-live
 *   <prefix>:{idx}:all|status:<s>|queue:<q>|task:<name>|ref:<reference>|iteration:<id>|iterations
 *                                         zset  listing indexes, members "<createdAt, 15 digits>:<id>", score 0
 *   <prefix>:{idx}:expiry                 zset  sweep entries (JSON) scored by expiresAt
 *   <prefix>:{idx}:outbox                 zset  outbox task ids by createdAt (single node); on Cluster
 *   <prefix>:{<tag>}:outbox + {idx}:outbox-slots  one per slot tag, so a MULTI in that slot writes it
 *
 * The listing indexes share the tag {idx}: on Cluster they change in one pipeline to one node.
 * A tag is a short base-62 string naming one of the 16384 cluster slots: a task with a reference
 * gets the tag of the reference's own slot (hash-tag rules apply, so "{order:42}:receipt" lands
 * next to the user's "{order:42}" keys), one without a random slot's. Task ids are "<tag>_<random>".
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { DocumentKind } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';

const SLOT_COUNT = 16384;

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

function crc16(bytes: Uint8Array): number {
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
function slotTag(slot: number): string {
  if (!slotTags) {
    const tags: string[] = new Array<string>(SLOT_COUNT);
    let missing = SLOT_COUNT;
    const visit = (candidate: string): void => {
      const slot = crc16(Buffer.from(candidate, 'latin1')) % SLOT_COUNT;
      if (tags[slot] !== undefined) return;
      tags[slot] = candidate;
      missing -= 1;
    };
    for (const a of BASE62) visit(a);
    for (const a of BASE62) for (const b of BASE62) visit(a + b);
    for (const a of BASE62) for (const b of BASE62) for (const c of BASE62) if (missing > 0) visit(a + b + c);
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** The tag of a task id: the text before its first "_" ("<tag>_<random>"), else the whole id. */
export function tagOfId(id: string): string {
  const cut = id.indexOf('_');
  return cut > 0 ? id.slice(0, cut) : id;
}

const tagOfReference = (reference: string): string => slotTag(hashSlot(reference));

/** A task id whose tag puts the task in its reference's slot, or in a random slot. */
export function newTaskId(reference: string | undefined): string {
  const tag = reference === undefined ? slotTag(randomInt(SLOT_COUNT)) : tagOfReference(reference);
  return `${tag}_${randomBytes(15).toString('base64url')}`;
}

/** Index members sort newest first under ZRANGE BYLEX REV: fixed-width createdAt, then the id. */
export function indexMember(createdAt: number, id: string): string {
  if (!Number.isSafeInteger(createdAt) || createdAt < 0 || createdAt >= 1e15) {
    throw new CloudDeferError('INVALID_OPTION', `createdAt must be a whole number of epoch milliseconds (got ${createdAt}).`);
  }
  return `${String(createdAt).padStart(15, '0')}:${id}`;
}

export const idOfMember = (member: string): string => member.slice(16);

export class KeyLayout {
  constructor(
    readonly prefix: string,
    readonly cluster: boolean,
  ) {
    if (!prefix || /[{}]/.test(prefix)) {
      throw new CloudDeferError(
        'INVALID_OPTION',
        `The Redis key prefix must be non-empty and free of "{" and "}" (got "${prefix}"): braces would change the keys' hash slots.`,
      );
    }
  }

  doc(kind: DocumentKind, id: string): string {
    const p = this.prefix;
    switch (kind) {
      case 'task':
      case 'outbox':
        return `${p}:{${tagOfId(id)}}:${kind}:${id}`;
      case 'ref':
        return `${p}:{${tagOfReference(id)}}:ref:${id}`;
      case 'iteration':
        return `${p}:{${id}}:iteration`;
      case 'shard': {
        const cut = id.lastIndexOf('/');
        return `${p}:{${id.slice(0, cut)}}:shard:${id.slice(cut + 1)}`;
      }
    }
  }

  payload(id: string): string {
    return `${this.prefix}:{${tagOfId(id)}}:payload:${id}`;
  }

  /** A listing index: all, expiry, iterations, outbox-slots, or "<filter>:<value>". */
  index(name: string): string {
    return `${this.prefix}:{idx}:${name}`;
  }

  /** The outbox index of a task: one for all on a single node, the task's slot's on Cluster. */
  outbox(tag: string | undefined): string {
    return tag === undefined ? this.index('outbox') : `${this.prefix}:{${tag}}:outbox`;
  }
}
