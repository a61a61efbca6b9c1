/**
 * A seeded fuzz of 3,000 request bodies sent with a valid token, over real HTTP: random bytes,
 * random JSON, truncations and field-by-field mutations of a real envelope aimed at an existing
 * record and at another task's stored payload. Every body is answered 200 (acknowledged, never
 * retried forever), the server keeps answering, and no run ever uses arguments other than its
 * record's: the record is the authority whatever the envelope says.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { currentTask } from '../../src/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { post } from './harness.js';

const SEED = 20261201;
const BODIES = 3000;

describe('envelope fuzz (seeded, 3,000 bodies)', function () {
  this.timeout(300_000);
  let app: TestApp;
  let recorder: Recorder;
  let token: string;
  let pendingId: string;
  let victimId: string;
  const blob = 'v'.repeat(120 * 1024);
  const runs: Array<{ id: string; args: unknown[] }> = [];

  before(async () => {
    recorder = await startRecorder();
    app = await startApp('express', { queues: [{ name: 'held' }] }, (d) => {
      d.task('greet', (...args: unknown[]) => void runs.push({ id: currentTask()!.id, args }));
      d.task('victim', (...args: unknown[]) => void runs.push({ id: currentTask()!.id, args }));
    });
    await app.deferred.defer('greet', ['token'], { url: recorder.url, audience: app.handlerUrl });
    token = String((await eventually(() => recorder.requests[0], 'a signed delivery')).headers.authorization);
    await app.deferred.pauseQueue('held');
    pendingId = (await app.deferred.defer('greet', ['alice'], { queue: 'held' })).id;
    victimId = (await app.deferred.defer('victim', [blob], { queue: 'held' })).id;
    runs.length = 0;
  });
  after(async () => {
    await app.close();
    await recorder.close();
  });

  function bodies(): fc.Arbitrary<Buffer> {
    const absent = fc.constant(undefined);
    const field = (...values: Array<fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> => fc.oneof(absent, ...values);
    const mutated = fc
      .record({
        v: field(fc.constant(1), fc.constant(2), fc.constant('1'), fc.constant(null)),
        task: field(fc.constant('greet'), fc.constant('victim'), fc.constant('retired'), fc.constant(''), fc.integer()),
        id: field(fc.constant(pendingId), fc.constant(victimId), fc.string({ maxLength: 40 }), fc.constant(''), fc.integer()),
        payloadRef: field(fc.constant(victimId), fc.constant(pendingId), fc.string({ maxLength: 20 }), fc.constant('')),
        args: field(fc.constant(['alice']), fc.constant(['mallory']), fc.array(fc.jsonValue(), { maxLength: 4 }), fc.string(), fc.object()),
        meta: field(
          fc.constant({}),
          fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.object())),
          fc.constant([]),
          fc.string(),
        ),
        extra: field(fc.jsonValue()),
      })
      .map((fields) => {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
        return Buffer.from(JSON.stringify(out));
      });
    const genuine = JSON.stringify({ v: 1, task: 'greet', id: pendingId, args: ['alice'] });
    const truncated = fc.integer({ min: 0, max: genuine.length - 1 }).map((n) => Buffer.from(genuine.slice(0, n)));
    const randomBytes = fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b));
    const randomJson = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
    return fc.oneof(
      { arbitrary: mutated, weight: 6 },
      { arbitrary: truncated, weight: 1 },
      { arbitrary: randomBytes, weight: 1 },
      { arbitrary: randomJson, weight: 2 },
    );
  }

  it("answers every body 200, and no run uses arguments other than its record's", async () => {
    const port = Number(new URL(app.baseUrl).port);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(bodies(), async (body) => {
        sent += 1;
        const answer = await post(
          { host: '127.0.0.1', port, path: app.deferred.handlerPath },
          { Authorization: token, 'X-CloudTasks-QueueName': 'held', 'X-CloudTasks-TaskName': `fuzz-${sent}` },
          body,
        );
        assert.equal(answer.status, 200, `${body.toString('latin1').slice(0, 200)} -> ${answer.status} ${answer.body}`);
      }),
      { seed: SEED, numRuns: BODIES },
    );
    assert.equal(sent, BODIES);
    for (const run of runs) {
      if (run.id === pendingId) assert.deepEqual(run.args, ['alice'], "the pending task ran with its record's arguments");
      if (run.id === victimId) assert.deepEqual(run.args, [blob], 'the stored-payload task ran with its own payload');
    }
    assert.ok(runs.filter((r) => r.id === pendingId).length <= 1, 'at most once');
    assert.ok(runs.filter((r) => r.id === victimId).length <= 1, 'at most once');
    // Still serving: the held tasks run when their queue resumes.
    await app.deferred.resumeQueue('held');
    await eventually(async () => (await app.deferred.getTask(pendingId))?.status === 'succeeded', 'the pending task');
    await eventually(async () => (await app.deferred.getTask(victimId))?.status === 'succeeded', 'the stored-payload task');
    assert.ok(runs.some((r) => r.id === pendingId && (r.args as string[])[0] === 'alice'));
  });
});
