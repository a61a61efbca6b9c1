/**
 * Entity layout of the Datastore adapter. Every kind name starts with the stores' `kindPrefix`
 * (default "CloudDefer"); every key lives in the stores' namespace.
 *
 *   <P>Task            name = task id        value: the record as JSON, v, expiresAt, listing keys
 *   <P>Reference       name = sha256(ref)    value: the ReferenceHold as JSON, v, expiresAt
 *   <P>Payload         name = payload id     { size, chunks, generation, expiresAt, data }: the
 *     <P>PayloadChunk  name = "<gen>:<i>"    first chunk inline, chunks 1..n-1 as children
 *   <P>Outbox          name = task id        value: the entry as JSON, v, createdAt
 *   <P>Iteration       name = iteration id   value: the header as JSON, v, expiresAt, lAll
 *     <P>IterationShard id = index + 1       value: the shard's progress as JSON, v, expiresAt
 *
 * Every kind but the payload's is a document of src/core/documents.ts: `v` is its version.
 * Indexed properties (all single-property, built in, so no index.yaml is needed):
 *   expiresAt (the sweep); Task: the listing keys lAll, lStatus, lQueue, lTask, lRef, lIteration,
 *   lQueueStatus (see listing-keys.ts); Iteration: lAll; Outbox: createdAt. Nothing else.
 */
import { prefixedNames } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';

export interface KindNames {
  readonly task: string;
  readonly reference: string;
  readonly payload: string;
  readonly payloadChunk: string;
  readonly outbox: string;
  readonly iteration: string;
  readonly iterationShard: string;
}

const PREFIX = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;

export function kindNames(prefix: string): KindNames {
  if (!PREFIX.test(prefix)) {
    throw new CloudDeferError('INVALID_OPTION', `kindPrefix must be 1-100 letters, digits or '_', starting with a letter (got "${prefix}").`);
  }
  return prefixedNames(prefix, ['Task', 'Reference', 'Payload', 'PayloadChunk', 'Outbox', 'Iteration', 'IterationShard']);
}
