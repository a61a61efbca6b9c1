// Shared mocha set-up: no Google metadata-server probes from the official clients in tests.
process.env.METADATA_SERVER_DETECTION = 'none';
