/**
 * deferIteration's bookkeeping on Firestore: the core's IterationStore over the documents of
 * documents.ts (a header per iteration and one document per shard).
 */
import { DocumentIterationStore } from '../../src/core/documents.js';
import type { AdapterContext } from './context.js';
import { FirestoreIterationDocuments } from './documents.js';

export class FirestoreIterationStore extends DocumentIterationStore {
  constructor(ctx: AdapterContext) {
    super(new FirestoreIterationDocuments(ctx));
  }
}
