// Shared mocha set-up: no Google metadata-server probes from the official clients in tests.
process.env.METADATA_SERVER_DETECTION = 'none';
// The suite runs on the embedded default: a CI runner inside Kubernetes (KUBERNETES_SERVICE_HOST) or
// with NODE_ENV=production would make createDeferred() refuse it. Tests that need them set them.
for (const name of [
  'NODE_ENV',
  'K_SERVICE',
  'GAE_ENV',
  'KUBERNETES_SERVICE_HOST',
  'CLOUD_RUN_JOB',
  'CLOUD_TASKS_EMULATOR_HOST',
  'CLOUD_TASKS_EMULATOR_JWKS_URI',
]) {
  delete process.env[name];
}
