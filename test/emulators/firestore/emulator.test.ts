/** The emulator itself: start, address, reset, stop, and the RPCs it does not implement. */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { status } from '@grpc/grpc-js';
import { Firestore } from '@google-cloud/firestore';
import { databaseName, gapicClient } from './gapic.js';
import { type FirestoreEmulatorOptions, type RunningFirestoreEmulator, startFirestoreEmulator } from './index.js';

/** A client for an emulator this test started, without touching the environment of other tests. */
function clientFor(address: string): Firestore {
  const previous = process.env.FIRESTORE_EMULATOR_HOST;
  process.env.FIRESTORE_EMULATOR_HOST = address;
  try {
    return new Firestore({ projectId: 'emulator-test' });
  } finally {
    if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = previous;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('firestore emulator: lifecycle', () => {
  it('listens where asked, forgets everything on reset(), and stops', async () => {
    const port = await freePort();
    const emulator = await startFirestoreEmulator({ port });
    assert.equal(emulator.host, '127.0.0.1');
    assert.equal(emulator.port, port);
    assert.equal(emulator.address, `127.0.0.1:${port}`);
    const db = clientFor(emulator.address);
    try {
      await db.doc('things/one').set({ v: 1 });
      assert.equal((await db.doc('things/one').get()).exists, true);
      emulator.reset();
      assert.equal((await db.doc('things/one').get()).exists, false);
    } finally {
      await db.terminate();
      await emulator.stop();
    }
    const probe = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => probe.once('error', () => resolve()).once('connect', () => resolve()));
    assert.equal(probe.readyState === 'open', false, 'nothing listens after stop()');
    probe.destroy();
  });

  it('keeps two emulators apart', async () => {
    const [first, second] = await Promise.all([startFirestoreEmulator(), startFirestoreEmulator()]);
    const [a, b] = [clientFor(first.address), clientFor(second.address)];
    try {
      await a.doc('things/one').set({ v: 1 });
      assert.equal((await b.doc('things/one').get()).exists, false);
    } finally {
      await Promise.all([a.terminate(), b.terminate()]);
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  /** An emulator with a read-write transaction (begun over the low-level client) that locked `locks/held`. */
  async function withHeldLock(
    options: FirestoreEmulatorOptions,
    body: (db: Firestore, commitHolder: () => Promise<unknown>, emulator: RunningFirestoreEmulator) => Promise<void>,
  ): Promise<void> {
    const emulator = await startFirestoreEmulator(options);
    const target = { address: emulator.address, projectId: 'emulator-test' };
    const raw = gapicClient(target);
    const db = clientFor(emulator.address);
    try {
      const database = databaseName(target);
      const [begun] = await raw.beginTransaction({ database });
      const name = `${database}/documents/locks/held`;
      const read = raw.batchGetDocuments({ database, documents: [name], transaction: begun.transaction });
      await new Promise<void>((resolve, reject) => read.on('error', reject).on('end', resolve).resume());
      await body(db, () => raw.commit({ database, transaction: begun.transaction, writes: [] }), emulator);
    } finally {
      await raw.close();
      await db.terminate();
      await emulator.stop();
    }
  }

  it('ends a transaction that waits for a lock when the emulator stops', async () => {
    const emulator = await startFirestoreEmulator({ lockWaitTimeoutMs: 60_000 });
    const target = { address: emulator.address, projectId: 'emulator-test' };
    const raw = gapicClient(target);
    try {
      const database = databaseName(target);
      const name = `${database}/documents/locks/held`;
      const [first, second] = [(await raw.beginTransaction({ database }))[0], (await raw.beginTransaction({ database }))[0]];
      for (const { transaction } of [first, second]) {
        const read = raw.batchGetDocuments({ database, documents: [name], transaction });
        await new Promise<void>((resolve, reject) => read.on('error', reject).on('end', resolve).resume());
      }
      // The second one's commit waits for the first one's shared lock.
      const waiter = raw.commit({ database, transaction: second.transaction, writes: [{ update: { name, fields: {} } }] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const stopped = emulator.stop();
      await assert.rejects(waiter, (error: { code?: number }) => error.code === status.ABORTED);
      await stopped;
    } finally {
      await raw.close();
      await emulator.stop();
    }
  });

  it("gives up a transaction's lock wait after lockWaitTimeoutMs with ABORTED", async () => {
    await withHeldLock({ lockWaitTimeoutMs: 200 }, async (db) => {
      const started = Date.now();
      const held = db.doc('locks/held');
      const waiter = db.runTransaction(
        async (tx) => {
          await tx.get(held); // shared: granted at once
          tx.set(held, { by: 'waiter' }); // the commit waits for the other reader
        },
        { maxAttempts: 1 },
      );
      await assert.rejects(waiter, (error: { code?: number; message?: string }) => error.code === status.ABORTED && /lock timeout/.test(error.message ?? ''));
      assert.ok(Date.now() - started >= 190, 'it waited first');
    });
  });

  it('closes a transaction idle for idleTimeoutMs when a write waits for its lock; that one then fails with INVALID_ARGUMENT', async () => {
    await withHeldLock({ idleTimeoutMs: 100 }, async (db, commitHolder) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      await db.doc('locks/held').set({ by: 'outside' });
      await assert.rejects(commitHolder(), (error: { code?: number }) => error.code === status.INVALID_ARGUMENT);
    });
  });

  it('answers UNIMPLEMENTED for Listen and Write', async () => {
    const emulator = await startFirestoreEmulator();
    const target = { address: emulator.address, projectId: 'emulator-test' };
    const raw = gapicClient(target);
    try {
      for (const open of [() => raw.listen(), () => raw.write()]) {
        const stream = open();
        const code = await new Promise<number | undefined>((resolve) => {
          stream.on('error', (error: { code?: number }) => resolve(error.code));
          stream.on('data', () => undefined);
          stream.write({ database: databaseName(target) });
        });
        assert.equal(code, status.UNIMPLEMENTED);
      }
    } finally {
      await raw.close();
      await emulator.stop();
    }
  });
});
