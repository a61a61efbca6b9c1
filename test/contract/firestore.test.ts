import { openFirestoreHarness } from '../firestore/harness.js';
import { describeStoreContract } from './suite.js';

// The suite's default 10,000-record paging case costs about 12 s on the in-process emulator
// (it scans every document for each query); FIRESTORE_CONTRACT_PAGING lowers it for quick runs.
describeStoreContract('firestore', () => openFirestoreHarness(), {
  ...(process.env.FIRESTORE_CONTRACT_PAGING ? { pagingRecords: Number(process.env.FIRESTORE_CONTRACT_PAGING) } : {}),
});
