// Shared mocha set-up: no Google metadata-server probes and no real credentials lookups in tests.
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GOOGLE_CLOUD_PROJECT ??= 'test-project';
