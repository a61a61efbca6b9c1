/**
 * What a transactional defer writes, decided once for every backend's transaction hook: the hook
 * reads through its own transaction (so two transactions taking one reference conflict) and
 * applies the writes with its client's own transaction API.
 */
import type { DocumentWrite, TaskRead } from './documents.js';
import { CloudDeferError } from './errors.js';
import { createWithReference } from './lifecycle.js';
import type { StagedDefer, Stores } from './stores.js';

/** Reads one document through the backend's transaction; absent (or expired) reads as undefined. */
export type StagedRead = TaskRead;

/** The writes of one staged defer; `hold` only for a defer with a reference. */
export interface StagedWrites {
  task: DocumentWrite;
  hold?: DocumentWrite;
  outbox: DocumentWrite;
}

/**
 * Reads the reference's hold and holder with `read`, lets the lifecycle decide, and returns the
 * writes; undefined when the reference is held by an unfinished task (the defer writes nothing, as
 * outside a transaction). `afterReads` runs once the reads are done (a hook checks there that its
 * transaction is still open).
 */
export async function stagedWrites(staged: StagedDefer, now: number, read: StagedRead, afterReads?: () => void): Promise<StagedWrites | undefined> {
  const { record, outbox } = staged;
  const writes: StagedWrites = {
    task: { kind: 'task', id: record.id, expect: 'absent', value: record, expiresAt: record.expiresAt },
    outbox: { kind: 'outbox', id: outbox.taskId, expect: 'absent', value: outbox },
  };
  if (record.reference === undefined) return writes;
  const hold = await read('ref', record.reference);
  const holder = hold?.value.held ? await read('task', hold.value.taskId) : undefined;
  afterReads?.();
  const decision = createWithReference(record, now, { ...(hold ? { hold: hold.value } : {}), ...(holder ? { holder: holder.value } : {}) });
  if (decision.kind !== 'create') return undefined;
  if (decision.hold)
    writes.hold = { kind: 'ref', id: record.reference, expect: hold ? hold.version : 'absent', value: decision.hold, expiresAt: record.expiresAt };
  return writes;
}

/** A transactional defer's payload must fit in the backend's one commit with the rest of the transaction. */
export function checkTransactionalPayload(staged: StagedDefer, maxBytes: number, backend: string): void {
  const size = staged.payload?.data.byteLength ?? 0;
  if (size <= maxBytes) return;
  throw new CloudDeferError(
    'PAYLOAD_TOO_LARGE',
    `A transactional defer's arguments (${size} bytes) must fit in one ${backend} commit (10 MiB with the rest of the transaction); defer outside the transaction or pass a smaller argument.`,
  );
}

/** Runs every staged enqueue of a committed transaction, each even when an earlier one failed; returns the failures. */
export async function runAfterCommits(work: ReadonlyArray<() => Promise<void>>): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (const run of work) await run().catch((error: unknown) => failures.push(error));
  return failures;
}

/** Rethrows the failures of runAfterCommits: the one failure itself, or all of them together. */
export function throwFailures(failures: readonly unknown[], backend: string): void {
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `Several deferred enqueues failed after the ${backend} transaction committed.`);
}

/**
 * Makes a staged defer outside any transaction, as defer() does (the memory stores' commit; Redis
 * when the hold changed before EXEC). False when its reference is held by an unfinished task.
 */
export async function createStaged(stores: Pick<Stores, 'state' | 'payloads'>, staged: StagedDefer, now: number): Promise<boolean> {
  if (!(await stores.state.createTask(staged.record, now)).created) return false;
  if (staged.payload) await stores.payloads.put(staged.payload.id, staged.payload.data, staged.payload.ttlMs);
  await stores.state.addOutbox(staged.outbox);
  return true;
}

/**
 * The body of a stores.transaction(work) runner on a begun transaction: run `work`, then `commit`
 * (which also runs the staged enqueues); `abandon` instead when `work` throws, and rethrow.
 */
export async function runWork<Tx, T>(tx: Tx, work: (tx: Tx) => Promise<T>, commit: () => Promise<unknown>, abandon: () => unknown): Promise<T> {
  let result: T;
  try {
    result = await work(tx);
  } catch (error) {
    await abandon();
    throw error;
  }
  await commit();
  return result;
}

/** Tells a node-style `callback` (when the user's commit or exec was given one) how `done` settled. */
export function notify<T>(done: Promise<T>, callback: ((error: Error | null, value?: T) => void) | undefined): void {
  if (callback)
    done.then(
      (value) => callback(null, value),
      (error: Error) => callback(error),
    );
}
