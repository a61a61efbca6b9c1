/**
 * Refuses option keys nobody reads: in JavaScript a misspelt option (`countdwn: 60`) would
 * otherwise be ignored silently and the task would run at the wrong time.
 */
import { CloudDeferError } from './errors.js';

/** Edit distance, for "did you mean"; option names are short, so the quadratic table is fine. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The valid key closest to `key`. */
export function nearestKey(key: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of valid) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Throws INVALID_OPTION for the first key of `options` not in `valid`, naming the nearest valid
 * key. `where` names the call, e.g. "defer()". Undefined or non-object options pass.
 */
export function assertOptionKeys(where: string, options: unknown, valid: readonly string[]): void {
  if (options === null || typeof options !== 'object') return;
  for (const key of Object.keys(options)) {
    if (valid.includes(key)) continue;
    const near = nearestKey(key, valid);
    throw new CloudDeferError(
      'INVALID_OPTION',
      `${where} has no option "${key}"${near ? `; did you mean "${near}"?` : ''} Valid options: ${valid.join(', ')}.`,
    );
  }
}
