/**
 * The few @google-cloud/firestore values the adapter needs at run time (FieldValue, FieldPath,
 * Timestamp, and Transaction to recognise a transaction). They must come from the same copy of
 * the library as the user's client, which recognises them with instanceof. Loaded on first use
 * only, so that importing cloud-defer/firestore never loads the library.
 */
import type * as FirestoreModule from '@google-cloud/firestore';
import type { Firestore } from '@google-cloud/firestore';
import { CloudDeferError } from '../../src/core/errors.js';

/** What the adapter takes from the library: the module itself or a re-export (firebase-admin/firestore). */
export type FirestoreLibrary = Pick<typeof FirestoreModule, 'Firestore' | 'FieldValue' | 'FieldPath' | 'Timestamp' | 'Transaction'>;

export function loadLibrary(firestore: Firestore, given: FirestoreLibrary | undefined): FirestoreLibrary {
  let library = given;
  if (!library) {
    try {
      library = require('@google-cloud/firestore') as FirestoreLibrary;
    } catch (error) {
      throw new CloudDeferError('INVALID_OPTION', 'cloud-defer/firestore needs @google-cloud/firestore: npm install @google-cloud/firestore.', {
        cause: error,
      });
    }
  }
  if (!(firestore instanceof library.Firestore)) {
    throw new CloudDeferError(
      'INVALID_OPTION',
      'The Firestore client given to firestoreStores() comes from another copy of @google-cloud/firestore than the one cloud-defer loads ' +
        "(firebase-admin, or two installed versions). Pass that copy as `library`, e.g. library: require('firebase-admin/firestore').",
    );
  }
  return library;
}
