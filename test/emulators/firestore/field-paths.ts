// Field paths (`a.b`, `` `odd.name`.c ``) and reading or replacing the value at one inside a
// document's fields. `__name__` stands for the document's own name in queries.
import { invalidArgument } from './errors.js';
import type { Fields, Value } from './values.js';

export type FieldPath = readonly string[];

export const DOCUMENT_NAME_FIELD = '__name__';
const SIMPLE_SEGMENT = /^[A-Za-z_][A-Za-z_0-9]*$/;

/** Parses the dotted syntax; a segment in backticks may hold any character (`\` escapes). */
export function parseFieldPath(text: string | undefined): FieldPath {
  if (!text) throw invalidArgument('A field path is empty.');
  const segments: string[] = [];
  let i = 0;
  while (i <= text.length) {
    let segment = '';
    if (text[i] === '`') {
      i++;
      while (i < text.length && text[i] !== '`') {
        if (text[i] === '\\') i++;
        if (i >= text.length) break;
        segment += text[i++];
      }
      if (text[i] !== '`') throw invalidArgument(`Unterminated backtick in field path "${text}".`);
      i++;
    } else {
      // Lenient: unquoted segments are not limited to simple names (the client quotes them anyway).
      while (i < text.length && text[i] !== '.') segment += text[i++];
    }
    if (segment === '') throw invalidArgument(`Field path "${text}" has an empty segment.`);
    segments.push(segment);
    if (i === text.length) break;
    if (text[i] !== '.') throw invalidArgument(`Invalid field path "${text}".`);
    i++;
    if (i === text.length) throw invalidArgument(`Field path "${text}" ends with a dot.`);
  }
  return segments;
}

export function formatFieldPath(path: FieldPath): string {
  return path.map((segment) => (SIMPLE_SEGMENT.test(segment) ? segment : `\`${segment.replace(/[\\`]/g, (c) => `\\${c}`)}\``)).join('.');
}

export function isDocumentNamePath(path: FieldPath): boolean {
  return path.length === 1 && path[0] === DOCUMENT_NAME_FIELD;
}

/** True when `prefix` is `path` or one of its ancestors. */
export function isPrefixOf(prefix: FieldPath, path: FieldPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i]);
}

export function getField(fields: Fields, path: FieldPath): Value | undefined {
  let current: Fields = fields;
  for (let i = 0; i < path.length - 1; i++) {
    const next = current.get(path[i]!);
    if (next?.kind !== 'map') return undefined;
    current = next.fields;
  }
  return current.get(path[path.length - 1]!);
}

/**
 * A copy of `fields` with the value at `path` replaced (or removed when `value` is undefined).
 * Missing or non-map parents are replaced by maps, as Firestore does for masked updates.
 */
export function withField(fields: Fields, path: FieldPath, value: Value | undefined): Map<string, Value> {
  const [head, ...rest] = path;
  const copy = new Map(fields);
  if (rest.length === 0) {
    if (value === undefined) copy.delete(head!);
    else copy.set(head!, value);
    return copy;
  }
  const child = fields.get(head!);
  if (value === undefined && child?.kind !== 'map') return copy;
  const childFields: Fields = child?.kind === 'map' ? child.fields : new Map();
  copy.set(head!, { kind: 'map', fields: withField(childFields, rest, value) });
  return copy;
}

/** Only the fields named by `paths` (a read mask or a projection). */
export function projectFields(fields: Fields, paths: readonly FieldPath[]): Map<string, Value> {
  let result = new Map<string, Value>();
  for (const path of paths) {
    if (isDocumentNamePath(path)) continue;
    const value = getField(fields, path);
    if (value !== undefined) result = withField(result, path, value);
  }
  return result;
}
