/**
 * Entity layout of the Datastore adapter. Every kind name starts with the stores' `kindPrefix`
 * (default "CloudDefer"); every key lives in the stores' namespace.
 *
 *   <P>Task            name = task id        the task record (codec.ts), plus its listing keys
 *   <P>Reference       name = sha256(ref)    { reference, taskId }: newest task created with it
 *   <P>Payload         name = payload id     { size, chunks, generation, expiresAt, data }: the
 *     <P>PayloadChunk  name = "<gen>:<i>"    first chunk inline, chunks 1..n-1 as children
 *   <P>Outbox          name = task id        { taskId, createdAt, request }
 *   <P>Iteration       name = iteration id   the iteration's own fields and shardsDone
 *     <P>IterationShard id = index + 1       one shard's progress and its done marker
 *
 * Indexed properties (all single-property, built in, so no index.yaml is needed):
 *   Task: expiresAt and the listing keys lAll, lStatus, lQueue, lTask, lRef, lIteration,
 *   lQueueStatus (see listing.ts); Payload and Iteration: expiresAt (and Iteration: lAll);
 *   Outbox: createdAt. Everything else is excluded from indexes.
 */
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
  return {
    task: `${prefix}Task`,
    reference: `${prefix}Reference`,
    payload: `${prefix}Payload`,
    payloadChunk: `${prefix}PayloadChunk`,
    outbox: `${prefix}Outbox`,
    iteration: `${prefix}Iteration`,
    iterationShard: `${prefix}IterationShard`,
  };
}
