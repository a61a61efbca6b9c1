import { openFirestoreHarness } from '../firestore/harness.js';
import { describeStoreContract } from './suite.js';

// The in-process emulator scans every document for each query, so 10,000 records cost ~12 s here;
// 3,000 pages the same way. FIRESTORE_CONTRACT_PAGING=10000 runs the suite's default.
describeStoreContract('firestore', () => openFirestoreHarness(), {
  pagingRecords: Number(process.env.FIRESTORE_CONTRACT_PAGING ?? 3_000),
});
