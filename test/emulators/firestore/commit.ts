// Applying writes to the store: all of a commit's writes or none, at one commit time.
import { type MonotonicClock, microsToWire } from './clock.js';
import { checkDocumentSize } from './document-size.js';
import type { DocumentStore, StoredDocument } from './store.js';
import { fieldsEqual, type Value, valueToWire } from './values.js';
import type { CommitResponse } from './wire.js';
import { applyWrite, type DecodedWrite } from './writes.js';

/**
 * Applies all writes or none (any failing precondition or size check throws before the store is
 * touched). A write that changes nothing leaves the document and its update_time alone, as
 * Firestore does; every changed document gets the commit time as its update_time.
 */
export function applyAtomically(store: DocumentStore, clock: MonotonicClock, writes: readonly DecodedWrite[]): CommitResponse {
  const commitTime = clock.commitTime();
  const working = new Map<string, StoredDocument | null>();
  const transformResults: (readonly Value[])[] = [];
  for (const write of writes) {
    const current = working.has(write.name) ? working.get(write.name)! : store.get(write.name);
    const outcome = applyWrite(write, current, commitTime);
    if (outcome.fields) checkDocumentSize(write.name, outcome.fields);
    const next = outcome.fields && {
      name: write.name,
      fields: outcome.fields,
      createTime: current?.createTime ?? commitTime,
      updateTime: commitTime,
    };
    working.set(write.name, next);
    transformResults.push(outcome.transformResults);
  }
  for (const [name, next] of working) {
    const original = store.get(name);
    if (!original && !next) continue;
    if (original && next && fieldsEqual(original.fields, next.fields)) continue;
    store.put(name, next, commitTime);
  }
  return {
    writeResults: writes.map((write, i) => {
      // No update time after a delete; the previous one after a write that changed nothing.
      const updateTime = write.operation === 'delete' ? undefined : store.get(write.name)?.updateTime;
      return {
        ...(updateTime === undefined ? {} : { updateTime: microsToWire(updateTime) }),
        transformResults: transformResults[i]!.map(valueToWire),
      };
    }),
    commitTime: microsToWire(commitTime),
  };
}
