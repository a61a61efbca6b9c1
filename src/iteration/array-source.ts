/** The simplest source: a list passed to deferIteration directly (ids, or any codec-encodable items). */
import type { IterationSource, SourcePage } from '../core/iteration.js';

export const ARRAY_SOURCE_KIND = 'array';

/** A shard's slice travels with the shard task, so no shard reads the whole list. */
export interface ArrayRange {
  /** Global index of items[0]. */
  offset: number;
  items: unknown[];
}

/** Keys are zero-padded global indexes, so string order is list order. */
const keyOf = (index: number): string => String(index).padStart(12, '0');

export const arraySource: IterationSource<unknown[], ArrayRange, unknown> = {
  kind: ARRAY_SOURCE_KIND,
  async split(items, shards) {
    const size = Math.ceil(items.length / shards);
    const ranges: ArrayRange[] = [];
    for (let offset = 0; offset < items.length; offset += size) {
      ranges.push({ offset, items: items.slice(offset, offset + size) });
    }
    return ranges;
  },
  size: (range) => range.items.length,
  async read(range, after, limit): Promise<SourcePage> {
    const start = after === undefined ? 0 : Number(after) - range.offset + 1;
    const end = Math.min(start + limit, range.items.length);
    const items = [];
    for (let i = start; i < end; i += 1) items.push({ key: keyOf(range.offset + i), value: range.items[i] });
    return { items, done: end >= range.items.length };
  },
};
