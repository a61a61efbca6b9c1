/**
 * The collections one firestoreStores() call uses, all named `<prefix><Name>` (default prefix
 * "cloudDefer"), each document carrying an `expireAt` timestamp for a TTL policy:
 *
 *   cloudDeferTasks/{taskId}                       one task record (codec.ts)
 *   cloudDeferReferences/{sha256(reference)}       { taskId, reference }: who holds a reference
 *   cloudDeferPayloads/{id}                        a payload's head (inline bytes, or its chunk count)
 *     cloudDeferPayloadChunks/{generation}.{n}     the chunks of a payload over one document's limit
 *   cloudDeferOutbox/{taskId}                      an enqueue staged by a committed transaction
 *   cloudDeferIterations/{iterationId}             deferIteration's record, one map entry per shard
 */
import { createHash } from 'node:crypto';
import { CloudDeferError } from '../../src/core/errors.js';

export interface CollectionNames {
  readonly tasks: string;
  readonly references: string;
  readonly payloads: string;
  /** A subcollection of each payload head. */
  readonly payloadChunks: string;
  readonly outbox: string;
  readonly iterations: string;
}

export function collectionNames(prefix: string): CollectionNames {
  if (!/^[A-Za-z0-9_-]*$/.test(prefix) || prefix.startsWith('__')) {
    throw new CloudDeferError('INVALID_OPTION', `collectionPrefix "${prefix}" must be letters, digits, "_" or "-", not starting with "__".`);
  }
  return {
    tasks: `${prefix}Tasks`,
    references: `${prefix}References`,
    payloads: `${prefix}Payloads`,
    payloadChunks: `${prefix}PayloadChunks`,
    outbox: `${prefix}Outbox`,
    iterations: `${prefix}Iterations`,
  };
}

/** References are free text up to 500 characters (with "/" allowed): the document id is their hash. */
export function referenceDocId(reference: string): string {
  return createHash('sha256').update(reference, 'utf8').digest('hex');
}

/** Task, payload and iteration ids become document ids as they are; refuse the few Firestore cannot hold. */
export function checkDocId(id: string, what: string): string {
  if (!id || id.includes('/') || id === '.' || id === '..' || /^__.*__$/.test(id) || Buffer.byteLength(id, 'utf8') > 1500) {
    throw new CloudDeferError(
      'INVALID_OPTION',
      `${what} "${id.slice(0, 80)}" cannot be a Firestore document id (no "/", not "." or "..", not __x__, at most 1500 bytes).`,
    );
  }
  return id;
}
