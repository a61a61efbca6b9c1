/** Request bodies the handler meets behind other middleware. */
import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { createDeferred, deferredMiddleware } from '../../src/index.js';
import { recordingLogger } from '../helpers/app.js';

describe('task handler behind a body parser', () => {
  it('answers (does not hang) when express.json() already consumed a body that is no envelope', async () => {
    const logger = recordingLogger();
    const deferred = createDeferred({ logger, mode: 'embedded', auth: { mode: 'none' }, target: { url: 'http://127.0.0.1:9/x' } });
    const app = express();
    app.use(express.json());
    app.use(deferredMiddleware(deferred));
    const res = await request(app).post(deferred.handlerPath).set('Content-Type', 'application/json').send('{}').timeout(5_000);
    assert.equal(res.status, 200, 'an undecodable envelope is acknowledged, never retried');
    assert.ok(logger.lines.some((l) => l.level === 'error' && /undecodable/.test(l.message)));
  });
});
