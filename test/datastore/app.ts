/**
 * An app on Datastore stores whose queue transport the test controls: every enqueue is seen (and
 * can be cut, as if the process died between commit and enqueue), over a Cloud Tasks emulator of
 * its own that delivers with real OIDC tokens.
 */
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import type { EnqueueRequest, QueueTransport } from '../../src/core/transport.js';
import { CloudTasksTransport } from '../../src/queue/cloud-tasks.js';
import { CloudDeferError, type Deferred, type Stores } from '../../src/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

export interface WatchedTransport extends QueueTransport {
  /** The next N enqueues fail. */
  cutNext: number;
  /** Enqueues that reached Cloud Tasks. */
  enqueued: EnqueueRequest[];
  /** Runs before each enqueue (e.g. to look at the store at that moment). */
  beforeEnqueue?: (request: EnqueueRequest) => Promise<void>;
}

function watched(transport: QueueTransport): WatchedTransport {
  const wrapper = Object.create(transport) as WatchedTransport;
  wrapper.cutNext = 0;
  wrapper.enqueued = [];
  wrapper.enqueue = async (request) => {
    await wrapper.beforeEnqueue?.(request);
    if (wrapper.cutNext > 0) {
      wrapper.cutNext -= 1;
      throw new CloudDeferError('ENQUEUE_FAILED', 'simulated crash between commit and enqueue');
    }
    const result = await transport.enqueue(request);
    wrapper.enqueued.push(request);
    return result;
  };
  return wrapper;
}

export interface WatchedApp extends TestApp {
  transport: WatchedTransport;
  emulator: EmulatorHandle;
}

export async function startWatchedApp(stores: Stores, setup: (deferred: Deferred) => void, queues = ['default']): Promise<WatchedApp> {
  const emulator = await startEmulator({ port: 0 });
  const transport = watched(new CloudTasksTransport({ client: createEmulatorClient(emulator), projectId: 'local-project', location: 'us-central1' }));
  const serviceAccountEmail = 'tasks@local-project.iam.gserviceaccount.com';
  const app = await startApp(
    'express',
    {
      stores,
      transport,
      queues: queues.map((name) => ({ name })),
      auth: { mode: 'oidc', serviceAccountEmail, jwks: emulator.jwks as never },
      target: { serviceAccountEmail },
    },
    setup,
  );
  return {
    ...app,
    transport,
    emulator,
    async close() {
      await app.close();
      await transport.close();
      await emulator.stop();
    },
  };
}
