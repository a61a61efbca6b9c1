/**
 * Model-based test of the lifecycle: random sequences of operations from several concurrent
 * callers, each deciding on its own (possibly stale) read and committing under the version it
 * read, as the core's read -> decide -> commit loop does against a store. Every commit that
 * applies is checked against a reference model written independently of lifecycle.ts.
 * No backend: the "store" is one versioned record and its reference hold, and an iteration's
 * header and shard documents, each with its version. Shard completion follows documents.ts's
 * protocol step by step (mark the shard, read the header, read the shards, decide, commit the
 * header), so the callers' steps interleave at every point a real store would let them.
 * CLOUD_DEFER_PRINT_FIGURES=1 prints how long the runs took.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ShardProgress } from '../../src/core/iteration.js';
import * as lifecycle from '../../src/core/lifecycle.js';
import { isFinished, type TaskRecord, type TaskStatus } from '../../src/core/records.js';
import { sampleRecord } from '../helpers/records.js';

const CALLERS = 4;
const LEASE_MS = 100;
const RUNS = 10_000;

type Action =
  | { kind: 'acquire' }
  | { kind: 'renew' }
  | { kind: 'release' }
  | { kind: 'settle'; status: 'succeeded' | 'failed' | 'retrying' }
  | { kind: 'cancel' }
  | { kind: 'rerun' };

type Step =
  | { kind: 'read'; caller: number }
  | { kind: 'act'; caller: number; action: Action }
  | { kind: 'tick'; ms: number }
  /** One step of `caller`'s shard completion; `redeliver` starts it over once it has finished. */
  | { kind: 'shard'; caller: number; redeliver: boolean };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.constant({ kind: 'acquire' } as const),
  fc.constant({ kind: 'renew' } as const),
  fc.constant({ kind: 'release' } as const),
  fc.constantFrom('succeeded', 'failed', 'retrying').map((status) => ({ kind: 'settle', status }) as const),
  fc.constant({ kind: 'cancel' } as const),
  fc.constant({ kind: 'rerun' } as const),
);
const callerArb = fc.integer({ min: 0, max: CALLERS - 1 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: callerArb.map((caller) => ({ kind: 'read', caller }) as const) },
  { weight: 5, arbitrary: fc.record({ caller: callerArb, action: actionArb }).map((s) => ({ kind: 'act', ...s }) as const) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 150 }).map((ms) => ({ kind: 'tick', ms }) as const) },
  { weight: 6, arbitrary: fc.record({ caller: callerArb, redeliver: fc.boolean() }).map((s) => ({ kind: 'shard', ...s }) as const) },
);

/** The reference model: only what the lifecycle promises, as a plain table of rules. */
interface Model {
  status: TaskStatus;
  owner?: string;
  leaseUntil?: number;
  attempts: number;
  /** Runs that ended without a settle: a lease taken over after it ran out, or released. */
  interrupted: number;
  history: number;
  version: number;
  held: boolean;
}

const PENDING: readonly TaskStatus[] = ['queued', 'retrying'];
const DONE: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

/** What the model says `action` by `owner` at `now` does; undefined when it must change nothing. */
function modelStep(m: Model, action: Action, owner: string, now: number): Model | undefined {
  const live = m.status === 'running' && (m.leaseUntil ?? 0) > now;
  const next = (fields: Partial<Model>): Model => ({ ...m, version: m.version + 1, ...fields });
  switch (action.kind) {
    case 'acquire':
      if (DONE.includes(m.status) || (m.status === 'running' && (m.owner === owner || live))) return undefined;
      return next({
        status: 'running',
        owner,
        leaseUntil: now + LEASE_MS,
        attempts: m.attempts + 1,
        interrupted: m.interrupted + (m.status === 'running' ? 1 : 0),
      });
    case 'renew':
      return m.status === 'running' && m.owner === owner && live ? next({ leaseUntil: Math.max(m.leaseUntil ?? 0, now + LEASE_MS) }) : undefined;
    case 'release':
      return m.status === 'running' && m.owner === owner
        ? next({ status: 'retrying', owner: undefined, leaseUntil: undefined, interrupted: m.interrupted + 1 })
        : undefined;
    case 'settle':
      if (m.status !== 'running' || m.owner !== owner) return undefined;
      return next({
        status: action.status,
        owner: undefined,
        leaseUntil: undefined,
        history: Math.min(m.history + 1, 20),
        held: !DONE.includes(action.status),
      });
    case 'cancel':
      return PENDING.includes(m.status) ? next({ status: 'cancelled', held: false }) : undefined;
    case 'rerun':
      return DONE.includes(m.status) ? next({ status: 'queued', held: true }) : undefined;
  }
}

function decide(record: TaskRecord, action: Action, owner: string, now: number): TaskRecord | undefined {
  switch (action.kind) {
    case 'acquire': {
      const d = lifecycle.acquireLease(record, { owner, now, leaseMs: LEASE_MS, executionCount: 1 });
      return d.kind === 'acquired' && d.changed ? d.record : undefined;
    }
    case 'renew':
      return lifecycle.renewLease(record, { owner, now, leaseMs: LEASE_MS });
    case 'release':
      return lifecycle.releaseLease(record, { owner, now });
    case 'settle':
      return lifecycle.settle(record, {
        owner,
        status: action.status,
        now,
        attempt: { at: now, statusCode: 200, outcome: action.status, durationMs: 1 },
        expiresAt: now + 10_000,
      });
    case 'cancel':
      return lifecycle.cancel(record, now);
    case 'rerun':
      return lifecycle.transition(record, ['succeeded', 'failed', 'cancelled'], 'queued', {}, now);
  }
}

interface Doc<T> {
  value: T;
  version: number;
}

type Phase = 'readShard' | 'commitShard' | 'readHeader' | 'readShards' | 'decide' | 'done';

/** One iteration's documents and the callers completing its shards (caller c completes shard c % shardCount). */
class ShardWorld {
  header: Doc<lifecycle.IterationCompletion>;
  shards: Array<Doc<ShardProgress>>;
  /** How many times each shard went from not done to done. */
  readonly marks: number[];
  /** Every completion that heard allDone: the shard it completed. */
  readonly heard: number[] = [];
  private readonly callers: Array<{
    shard: number;
    phase: Phase;
    shardSnap?: Doc<ShardProgress>;
    headerSnap?: Doc<lifecycle.IterationCompletion>;
    done?: number;
  }>;

  constructor(readonly shardCount: number) {
    this.header = { value: { shardCount }, version: 1 };
    this.shards = Array.from({ length: shardCount }, (_, index) => ({ value: { index, processed: 0, errors: 0, done: false }, version: 1 }));
    this.marks = new Array(shardCount).fill(0);
    this.callers = Array.from({ length: CALLERS }, (_, c) => ({ shard: c % shardCount, phase: 'readShard' }));
  }

  get finished(): boolean {
    return this.callers.every((caller) => caller.phase === 'done');
  }

  /** Advance `c` by one step of documents.ts's completeShard. */
  step(c: number, redeliver: boolean, now: number): void {
    const caller = this.callers[c]!;
    const s = caller.shard;
    switch (caller.phase) {
      case 'readShard':
        caller.shardSnap = structuredClone(this.shards[s]!);
        caller.phase = 'commitShard';
        return;
      case 'commitShard': {
        const next = lifecycle.completeShard(caller.shardSnap!.value, now);
        if (next && caller.shardSnap!.version !== this.shards[s]!.version) {
          caller.phase = 'readShard'; // lost to another writer of this shard: read again
          return;
        }
        if (next) {
          assert.equal(this.shards[s]!.value.done, false, 'only a shard not yet done is marked');
          this.shards[s] = { value: next, version: this.shards[s]!.version + 1 };
          this.marks[s]! += 1;
        }
        caller.phase = 'readHeader';
        return;
      }
      case 'readHeader':
        caller.headerSnap = structuredClone(this.header);
        caller.phase = caller.headerSnap.value.completedBy === undefined ? 'readShards' : 'decide';
        return;
      case 'readShards':
        caller.done = this.shards.filter((shard) => shard.value.done).length;
        caller.phase = 'decide';
        return;
      case 'decide': {
        const decision = lifecycle.shardCompletion(caller.headerSnap!.value, caller.done ?? this.shardCount, s);
        if (decision.kind === 'finish') {
          if (caller.headerSnap!.version !== this.header.version) {
            caller.phase = 'readHeader';
            return;
          }
          assert.ok(
            this.shards.every((shard) => shard.value.done),
            'the header is finished only when every shard is done',
          );
          this.header = { value: { ...this.header.value, completedBy: s }, version: this.header.version + 1 };
        }
        if (decision.allDone) this.heard.push(s);
        caller.phase = 'done';
        caller.shardSnap = undefined;
        caller.headerSnap = undefined;
        caller.done = undefined;
        return;
      }
      case 'done':
        if (redeliver) caller.phase = 'readShard';
        return;
    }
  }

  /** What the iteration promises at any time. */
  check(): void {
    const by = this.header.value.completedBy;
    if (by !== undefined) assert.ok(this.shards.every((shard) => shard.value.done));
    for (const shard of this.heard) assert.equal(shard, by, 'allDone is heard only by the shard that finished the iteration');
    for (const marks of this.marks) assert.ok(marks <= 1, 'a shard is never counted twice');
  }
}

function runShards(world: ShardWorld, steps: readonly Step[]): void {
  let now = 1_000;
  for (const step of steps) {
    if (step.kind === 'tick') now += step.ms;
    if (step.kind !== 'shard') continue;
    world.step(step.caller, step.redeliver, now);
    world.check();
  }
  // Let every caller finish: lost rounds are decided again, so each completion ends.
  for (let round = 0; round < 100 && !world.finished; round += 1) {
    for (let c = 0; c < CALLERS; c += 1) world.step(c, false, now);
    world.check();
  }
  assert.ok(world.finished, 'every completion ends');
  assert.deepEqual(world.marks, new Array(world.shardCount).fill(1), 'every shard was marked done exactly once');
  assert.ok(world.heard.length >= 1, 'a completion heard allDone once every shard was done');
  assert.equal(world.header.value.completedBy, world.heard[0]);
}

function runSequence(steps: readonly Step[]): void {
  let now = 1_000;
  const created = lifecycle.createWithReference(sampleRecord('model.task', { reference: 'ref', createdAt: now }), now, {});
  assert.equal(created.kind, 'create');
  if (created.kind !== 'create' || !created.hold) throw new Error('unreachable');
  let doc = { record: created.record, version: created.record.version };
  let hold = created.hold;
  let model: Model = { status: 'queued', attempts: 0, interrupted: 0, history: 0, version: doc.version, held: true };
  const snapshots: Array<{ record: TaskRecord; version: number } | undefined> = new Array(CALLERS).fill(undefined);

  for (const step of steps) {
    if (step.kind === 'tick') {
      now += step.ms;
      continue;
    }
    if (step.kind === 'shard') continue;
    if (step.kind === 'read') {
      snapshots[step.caller] = structuredClone(doc);
      continue;
    }
    const owner = `caller-${step.caller}`;
    const snapshot = snapshots[step.caller];
    if (!snapshot) continue;
    const next = decide(snapshot.record, step.action, owner, now);
    if (!next) {
      // A refusal writes nothing; on a current read it must be the model's refusal too.
      if (snapshot.version === doc.version)
        assert.equal(modelStep(model, step.action, owner, now), undefined, `${step.action.kind} refused but the model allows it`);
      continue;
    }
    if (snapshot.version !== doc.version) {
      // The version guard: another caller committed since this read; the caller must read again.
      snapshots[step.caller] = undefined;
      continue;
    }
    const expected = modelStep(model, step.action, owner, now);
    assert.ok(expected, `${step.action.kind} by ${owner} committed in ${model.status} but the model refuses it`);
    assert.equal(next.version, doc.version + 1, 'every write bumps the version by one');
    hold = lifecycle.holdAfter(hold, next) ?? hold;
    doc = { record: next, version: next.version };
    model = expected;
    snapshots[step.caller] = structuredClone(doc);

    const r = doc.record;
    assert.equal(r.status, model.status);
    assert.equal(r.leaseOwner, model.owner);
    assert.equal(r.leaseUntil, model.leaseUntil);
    assert.equal(r.attempts, model.attempts);
    assert.equal(r.interruptedRuns ?? 0, model.interrupted, 'runs that ended without their own settle');
    assert.equal(r.history.length, model.history);
    assert.equal(r.version, model.version);
    assert.equal(hold.held, model.held, 'the hold is held exactly while the holder is unfinished');
    assert.equal(hold.held, !isFinished(r.status));
    assert.equal(r.leaseOwner !== undefined, r.status === 'running', 'a lease exactly while running');
    if (isFinished(r.status)) assert.ok(r.finishedAt !== undefined, 'a finished record says when');
    // Whoever holds a live lease is the only one a new acquisition is refused for... until it expires.
    const holder = lifecycle.holdBlocks(hold, r, now);
    assert.equal(holder, !isFinished(r.status));
  }
}

describe('lifecycle: model-based, concurrent callers', function () {
  this.timeout(120_000);
  it(`${RUNS.toLocaleString('en')} random sequences from ${CALLERS} callers (leases, renew, release, settle, cancel, rerun, shard completion) agree with the reference model`, function () {
    const started = process.hrtime.bigint();
    let sequences = 0;
    let steps = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: CALLERS }), fc.array(stepArb, { minLength: 10, maxLength: 80, size: 'max' }), (shardCount, sequence) => {
        sequences += 1;
        steps += sequence.length;
        runSequence(sequence);
        runShards(new ShardWorld(shardCount), sequence);
      }),
      { numRuns: RUNS },
    );
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(sequences >= RUNS, `${sequences} sequences ran`);
    if (process.env.CLOUD_DEFER_PRINT_FIGURES === '1') {
      console.log(`      lifecycle model: ${sequences} sequences, ${steps} steps, ${ms.toFixed(0)} ms`);
    }
  });
});
