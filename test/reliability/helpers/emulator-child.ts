/**
 * A Cloud Tasks emulator in its own process (what `cloud-defer emulator --port N` runs), for tests
 * that restart or lose it. argv: port [appEngineBaseUrl]. Prints "READY host:port" once listening.
 */
import { startEmulator } from '../../../src/emulator/index.js';

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? 0);
  const emulator = await startEmulator({ port, projectId: 'local-project', location: 'us-central1' });
  process.stdout.write(`READY ${emulator.address} ${emulator.jwksUri}\n`);
  process.on('SIGTERM', () => {
    void emulator.stop().then(() => process.exit(0));
  });
}

void main();
