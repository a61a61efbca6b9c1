import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { describeStoreContract } from './suite.js';

// Ours, then Google's Firestore emulator in Datastore mode when gcloud is present. There every
// lost round of a contended commit costs a lock wait (about 2 s), so the contract takes minutes:
// npm test runs these files in a second mocha process beside the rest (scripts/run-tests.cjs).
// Paging: 1,000 records on Google's, 5,000 on ours (10,000 took 30 s of npm test). Races: 20
// callers on Google's (50 on one reference, and 64 on 32 shards, each took 5-7 s in most runs and
// over 60 s once under load: lost rounds there cost a lock wait each), 50 on ours. The 32
// completions of 32 shards run on both.
for (const { label, backend, google } of datastoreBackends()) {
  describeStoreContract(`datastore${label}`, () => openDatastoreHarness({}, backend), {
    pagingRecords: google ? 1_000 : 5_000,
    raceCallers: google ? 20 : 50,
  });
}
