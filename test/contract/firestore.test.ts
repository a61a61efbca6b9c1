import { firestoreBackends, openFirestoreHarness } from '../firestore/harness.js';
import { describeStoreContract } from './suite.js';

// The suite's 10,000-record paging case took over 100 s on the in-process emulator on a loaded
// 2-core machine (it scans the collection for each page query, and each create is a read and a
// commit): 5,000 there, 1,000 on Google's (a minute for 10,000). FIRESTORE_CONTRACT_PAGING sets it.
for (const { label, backend, google } of firestoreBackends()) {
  const paging = process.env.FIRESTORE_CONTRACT_PAGING ? Number(process.env.FIRESTORE_CONTRACT_PAGING) : google ? 1_000 : 5_000;
  describeStoreContract(`firestore${label}`, () => openFirestoreHarness({}, backend ? { backend } : {}), paging ? { pagingRecords: paging } : {});
}
