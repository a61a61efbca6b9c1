import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { describeStoreContract } from './suite.js';

// Ours, then Google's Firestore emulator in Datastore mode when gcloud is present. There every
// lost round of a contended commit costs a lock wait (about 2 s), so the contract takes minutes:
// npm test runs these files in a second mocha process beside the rest (scripts/run-tests.cjs).
// Paging: 1,000 records on Google's, 5,000 on ours (10,000 took 30 s of npm test). Races: 20
// callers on Google's (50 on one reference, 64 on 32 shards and 32 on 32 shards each took 4-7 s
// in most runs and over 60 s once each under load: lost rounds there cost a lock wait each), 50 on
// ours, and a 120 s limit there; 32 completions of 32 shards on Google's Datastore mode run in
// test/iteration/datastore-contention.test.ts.
for (const { label, backend, google } of datastoreBackends()) {
  describeStoreContract(`datastore${label}`, () => openDatastoreHarness({}, backend), {
    pagingRecords: google ? 1_000 : 5_000,
    raceCallers: google ? 20 : 50,
    ...(google ? { timeoutMs: 120_000 } : {}),
  });
}
