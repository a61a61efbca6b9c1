// Stored documents as the wire carries them, and the read masks requests apply to them.
import { microsToWire } from './clock.js';
import { type FieldPath, parseFieldPath, projectFields } from './field-paths.js';
import type { StoredDocument } from './store.js';
import { fieldsToWire } from './values.js';
import type { WireDocument, WireDocumentMask } from './wire.js';

export function maskPaths(mask: WireDocumentMask | null | undefined): FieldPath[] | undefined {
  return mask ? (mask.fieldPaths ?? []).map(parseFieldPath) : undefined;
}

/** The document with only the masked fields (all of them without a mask). */
export function toWireDocument(document: StoredDocument, mask?: readonly FieldPath[]): WireDocument {
  return {
    name: document.name,
    fields: fieldsToWire(mask ? projectFields(document.fields, mask) : document.fields),
    createTime: microsToWire(document.createTime),
    updateTime: microsToWire(document.updateTime),
  };
}

export function encodePageToken(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64');
}

export function decodePageToken(token: string | undefined): string | undefined {
  return token ? Buffer.from(token, 'base64').toString('utf8') : undefined;
}
