// Document sizes as Firestore's "storage size calculations" page defines them, for the 1 MiB limit.
// Approximation: the published rules are followed (strings: UTF-8 bytes + 1; integers, doubles and
// timestamps: 8; booleans and null: 1; geo points: 16; bytes: their length; references: the size of
// the referenced name; maps: key sizes + value sizes; a document: name size + fields + 32), but
// Google's servers may count internal overheads this does not know about, so documents within a
// few bytes of the limit can be judged differently.
import { invalidArgument } from './errors.js';
import { segmentsOf } from './names.js';
import type { Fields, Value } from './values.js';

export const MAX_DOCUMENT_BYTES = 1_048_576;

const stringSize = (text: string): number => Buffer.byteLength(text, 'utf8') + 1;

/** Each collection and document id as a string, plus 16. */
export function documentNameSize(name: string): number {
  return segmentsOf(name).reduce((total, id) => total + stringSize(id), 16);
}

function valueSize(value: Value): number {
  switch (value.kind) {
    case 'null':
    case 'boolean':
      return 1;
    case 'integer':
    case 'double':
    case 'timestamp':
      return 8;
    case 'geoPoint':
      return 16;
    case 'string':
      return stringSize(value.value);
    case 'bytes':
      return value.value.length;
    case 'reference':
      return documentNameSize(value.value);
    case 'array':
      return value.values.reduce((total, element) => total + valueSize(element), 0);
    case 'map':
      return fieldsSize(value.fields);
  }
}

function fieldsSize(fields: Fields): number {
  let total = 0;
  for (const [key, value] of fields) total += stringSize(key) + valueSize(value);
  return total;
}

export function documentSize(name: string, fields: Fields): number {
  return documentNameSize(name) + fieldsSize(fields) + 32;
}

export function checkDocumentSize(name: string, fields: Fields): void {
  const size = documentSize(name, fields);
  if (size > MAX_DOCUMENT_BYTES) {
    throw invalidArgument(
      `Document "${name}" cannot be written because its size (${size.toLocaleString('en-US')} bytes) ` +
        `exceeds the maximum allowed size of ${MAX_DOCUMENT_BYTES.toLocaleString('en-US')} bytes.`,
    );
  }
}
