import { firestoreBackends, openFirestoreHarness } from '../firestore/harness.js';
import { describeStoreContract } from './suite.js';

// The suite's default 10,000-record paging case costs about 12 s on the in-process emulator (it
// scans every document for each query) and a minute on Google's: 1,000 there. FIRESTORE_CONTRACT_PAGING
// lowers it for quick runs.
for (const { label, backend, google } of firestoreBackends()) {
  const paging = process.env.FIRESTORE_CONTRACT_PAGING ? Number(process.env.FIRESTORE_CONTRACT_PAGING) : google ? 1_000 : undefined;
  describeStoreContract(`firestore${label}`, () => openFirestoreHarness({}, backend ? { backend } : {}), paging ? { pagingRecords: paging } : {});
}
