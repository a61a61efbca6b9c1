/** The REST surface on the wire: one port with gRPC, Google's JSON mapping, enum encodings and errors. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createEmulatorClient, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { httpStatusOfCode } from '../../src/emulator/rest-service.js';
import { PARENT, queuePath } from './helpers.js';

describe('emulator: REST on the gRPC port', () => {
  let emulator: EmulatorHandle;
  before(async () => {
    emulator = await startEmulator();
  });
  after(async () => {
    await emulator.stop();
  });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${emulator.restUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: 'Bearer anything' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  it('serves gRPC and REST on the same port', async () => {
    const name = queuePath('same-port');
    const created = await call('POST', `/v2/${PARENT}/queues`, { name });
    assert.equal(created.status, 200);
    const client = createEmulatorClient(emulator);
    try {
      const [queue] = await client.getQueue({ name });
      assert.equal(queue.name, name, 'created over REST, read over gRPC');
    } finally {
      await client.close();
    }
    assert.equal(emulator.restUrl, `http://${emulator.address}`);
  });

  it('answers string enums by default and numbers with $alt=json;enum-encoding=int', async () => {
    const name = queuePath('enums');
    await call('POST', `/v2/${PARENT}/queues`, { name, retryConfig: { minBackoff: '1.5s', maxBackoff: '60s' } });
    const plain = await call('POST', `/v2/${name}:pause`, {});
    assert.equal(plain.json['state'], 'PAUSED');
    const numeric = await call('GET', `/v2/${name}?$alt=json%3Benum-encoding=int`);
    assert.equal(numeric.json['state'], 2, 'PAUSED = 2');
    const retry = plain.json['retryConfig'] as Record<string, unknown>;
    assert.equal(retry['minBackoff'], '1.500s', 'durations in the JSON form');
    assert.equal(retry['maxBackoff'], '60s');
  });

  it('maps tasks with RFC 3339 timestamps (microseconds), "60s" durations and base64 bytes', async () => {
    const name = queuePath('json-mapping');
    await call('POST', `/v2/${PARENT}/queues`, { name });
    await call('POST', `/v2/${name}:pause`, {});
    const scheduleTime = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, '.123456789Z');
    const created = await call('POST', `/v2/${name}/tasks`, {
      task: {
        name: `${name}/tasks/json-1`,
        scheduleTime,
        dispatchDeadline: '60s',
        httpRequest: { url: 'http://127.0.0.1:9/x', httpMethod: 'PATCH', body: Buffer.from('hé').toString('base64') },
      },
      responseView: 'FULL',
    });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    assert.equal(created.json['scheduleTime'], scheduleTime.replace('123456789Z', '123456Z'), 'microseconds kept');
    assert.equal(created.json['dispatchDeadline'], '60s');
    const http = created.json['httpRequest'] as Record<string, unknown>;
    assert.equal(http['httpMethod'], 'PATCH');
    assert.equal(Buffer.from(String(http['body']), 'base64').toString(), 'hé');
    const listed = await call('GET', `/v2/${name}/tasks?responseView=BASIC&pageSize=1`);
    const [first] = listed.json['tasks'] as Array<Record<string, unknown>>;
    assert.equal((first!['httpRequest'] as Record<string, unknown>)['body'], undefined, 'BASIC omits the body');
  });

  it('applies ?updateMask= on PATCH', async () => {
    const name = queuePath('mask');
    await call('POST', `/v2/${PARENT}/queues`, { name, rateLimits: { maxConcurrentDispatches: 9 } });
    const patched = await call('PATCH', `/v2/${name}?updateMask=rateLimits.maxDispatchesPerSecond`, {
      rateLimits: { maxDispatchesPerSecond: 4, maxConcurrentDispatches: 1 },
    });
    const rate = patched.json['rateLimits'] as Record<string, unknown>;
    assert.equal(rate['maxDispatchesPerSecond'], 4);
    assert.equal(rate['maxConcurrentDispatches'], 9, 'outside the mask');
  });

  it("answers errors in Google's JSON shape with the HTTP status of each gRPC code", async () => {
    const missing = await call('GET', `/v2/${queuePath('nope')}`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, {
      error: {
        code: 404,
        message: 'Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.',
        status: 'NOT_FOUND',
      },
    });
    const name = queuePath('dupe');
    await call('POST', `/v2/${PARENT}/queues`, { name });
    const again = await call('POST', `/v2/${PARENT}/queues`, { name });
    assert.deepEqual([again.status, (again.json['error'] as Record<string, unknown>)['status']], [409, 'ALREADY_EXISTS']);
    const bad = await call('POST', `/v2/${name}/tasks`, { task: { httpRequest: { url: 'nope' } } });
    assert.deepEqual([bad.status, (bad.json['error'] as Record<string, unknown>)['status']], [400, 'INVALID_ARGUMENT']);
    const notJson = await fetch(`${emulator.restUrl}/v2/${name}/tasks`, { method: 'POST', body: '{oops' });
    assert.equal(notJson.status, 400);
    const badPath = await fetch(`${emulator.restUrl}/v2/projects/%E0%A4%A/locations`);
    assert.equal(badPath.status, 400, 'a malformed path is refused, the server stays up');
    const unknown = await call('GET', '/v2/nothing/here');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json['error'] as Record<string, unknown>)['status'], 'NOT_FOUND');
    const table: Array<[number, number]> = [
      [status.INVALID_ARGUMENT, 400],
      [status.FAILED_PRECONDITION, 400],
      [status.OUT_OF_RANGE, 400],
      [status.UNAUTHENTICATED, 401],
      [status.PERMISSION_DENIED, 403],
      [status.NOT_FOUND, 404],
      [status.ALREADY_EXISTS, 409],
      [status.ABORTED, 409],
      [status.RESOURCE_EXHAUSTED, 429],
      [status.CANCELLED, 499],
      [status.UNKNOWN, 500],
      [status.INTERNAL, 500],
      [status.DATA_LOSS, 500],
      [status.UNIMPLEMENTED, 501],
      [status.UNAVAILABLE, 503],
      [status.DEADLINE_EXCEEDED, 504],
    ];
    for (const [code, http] of table) assert.equal(httpStatusOfCode(code), http, status[code]);
  });
});
