/**
 * Joins a defer to a MULTI (or pipeline) of the stores' client, through ioredis' public API only.
 *
 * stage() queues ONE command into it: lua/commit.lua, as plain EVAL (a NOSCRIPT inside a MULTI
 * would only show at EXEC, too late to fall back), writing the record, the reference hold, the
 * outbox entry and the payload, each guarded as a commit outside a transaction is. MULTI cannot
 * read, so a defer with a reference reads its hold when it is staged and decides there, with the
 * core's rules: a reference held by an unfinished task stages nothing (as a duplicate defer
 * writes nothing). If another writer changes that hold before EXEC, the script writes nothing
 * and, once EXEC has committed, the defer is made afresh outside the transaction.
 *
 * After a successful EXEC (results, none of them an error) each staged defer's afterCommit runs
 * exactly once; never when EXEC is refused (EXECABORT), aborted by a WATCH (null) or never sent
 * (dropped, DISCARDed). A failing afterCommit rejects; the outbox entry lets sweepOutbox()
 * enqueue the task later, as it does when another command of the transaction failed (Redis has
 * no rollback: the rest applied).
 *
 * Knowing a MULTI of this client: ioredis copies the commands defineCommand registered onto the
 * client's pipelines and MULTIs, so one carrying this client's own cloudDeferCommit function is
 * one of them. EXEC's reply position comes from `length` (a MULTI's results omit its MULTI).
 * When the stores' transaction() runner made the MULTI it runs the enqueues itself; a MULTI of
 * the user's own gets its `exec` wrapped once, on that instance: ioredis offers no public hook
 * that runs after EXEC, and per-command callbacks inside a MULTI only hear "QUEUED".
 */
import type { ChainableCommander } from 'ioredis';
import type { DocumentWrite, Versioned, WriteStagingHook } from '../../src/core/documents.js';
import { CloudDeferError } from '../../src/core/errors.js';
import { createStaged, notify, runAfterCommits, type StagedRead, stagedWrites, throwFailures } from '../../src/core/staged-writes.js';
import type { PayloadStore, StagedDefer, StateStore, TransactionHook } from '../../src/core/stores.js';
import type { PreparedCommit, RedisDocuments } from './documents.js';
import { luaSource } from './scripts.js';

type ExecResults = Awaited<ReturnType<ChainableCommander['exec']>>;

interface Staged {
  /** Index of the script's command in the pipeline's queue. */
  position: number;
  prepared: PreparedCommit;
  /** After EXEC, when the script applied its writes. */
  applied: () => Promise<void>;
  /** After EXEC, when the script wrote nothing (a document changed since it was read). */
  lost: () => Promise<void>;
}

interface Staging {
  commits: Staged[];
  closed: boolean;
}

export class RedisTransactionHook implements TransactionHook<ChainableCommander>, WriteStagingHook<ChainableCommander> {
  readonly name = 'redis';
  private readonly open = new WeakMap<object, Staging>();

  constructor(
    private readonly docs: RedisDocuments,
    private readonly state: StateStore,
    private readonly payloads: PayloadStore,
  ) {}

  /** A MULTI or pipeline of this stores' client (it carries the client's own defined command). */
  accepts(transaction: unknown): transaction is ChainableCommander {
    const client = this.docs.client as unknown as Record<string, unknown>;
    return (
      typeof transaction === 'object' &&
      transaction !== null &&
      transaction !== client &&
      (transaction as Record<string, unknown>).cloudDeferCommit === client.cloudDeferCommit
    );
  }

  /** For the stores' transaction() runner: it calls exec itself and then `afterExec`. */
  own(transaction: ChainableCommander): Staging {
    const staging: Staging = { commits: [], closed: false };
    this.open.set(transaction, staging);
    return staging;
  }

  async stage(transaction: ChainableCommander, staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    const staging = this.open.get(transaction) ?? this.wrap(transaction);
    const refuseIfClosed = (): void => {
      if (staging.closed) throw new CloudDeferError('INVALID_STATE', 'This MULTI has already been executed; start a new one to defer in a transaction.');
    };
    refuseIfClosed();
    const decided = await stagedWrites(staged, Date.now(), this.read);
    if (!decided) return;
    const writes: DocumentWrite[] = [decided.task, decided.outbox, ...(decided.hold ? [decided.hold] : [])];
    const { payload } = staged;
    // A payload whose time-to-live has already run out is no payload (PayloadStore.put does the same).
    const bytes = payload && payload.ttlMs > 0 ? Buffer.from(payload.data.buffer, payload.data.byteOffset, payload.data.byteLength) : undefined;
    const key = payload && this.docs.layout.payload(payload.id);
    const prepared = this.docs.prepare(
      writes,
      bytes && key ? [{ write: 1, cond: '*', command: 'p', key, score: Math.ceil(payload.ttlMs), member: bytes, local: true }] : [],
    );
    // Registered before EXEC so that the outbox sweeper finds this slot even if we die right after it.
    await this.docs.guard('register an outbox slot', () => this.docs.registerOutboxSlots(writes));
    refuseIfClosed(); // exec() may have been called while we read
    this.queue(transaction, staging, prepared, afterCommit, () => this.createAfresh(staged, afterCommit));
  }

  /**
   * Stages `decide`'s writes (read outside, as MULTI cannot read) as one guarded commit script.
   * A document changed between the read and EXEC makes the script write nothing; the rest of the
   * MULTI still applies (Redis has no rollback), and the caller finds its writes missing.
   */
  async stageWrites(transaction: ChainableCommander, decide: (read: StagedRead) => Promise<DocumentWrite[]>): Promise<void> {
    const staging = this.open.get(transaction) ?? this.wrap(transaction);
    const refuseIfClosed = (): void => {
      if (staging.closed) throw new CloudDeferError('INVALID_STATE', 'This MULTI has already been executed; start a new one.');
    };
    refuseIfClosed();
    const writes = await decide(this.read);
    if (writes.length === 0) return;
    const prepared = this.docs.prepare(writes);
    refuseIfClosed();
    const nothing = async (): Promise<void> => {};
    this.queue(transaction, staging, prepared, nothing, nothing);
  }

  /** Reads outside the MULTI (it cannot read); the commit script checks the versions at EXEC. */
  private readonly read: StagedRead = async (kind, id) => (await this.docs.read([{ kind, id }]))[0] as Versioned<never> | undefined;

  /** Queues one commit script and remembers what to run after EXEC, by whether it applied. */
  private queue(transaction: ChainableCommander, staging: Staging, prepared: PreparedCommit, applied: () => Promise<void>, lost: () => Promise<void>): void {
    staging.commits.push({ position: transaction.length, prepared, applied, lost });
    transaction.eval(luaSource('commit'), prepared.keys.length, ...prepared.keys, ...prepared.args);
  }

  /** Runs the enqueues of the defers a successful EXEC wrote. `queued` is the pipeline's length before EXEC. */
  async afterExec(staging: Staging, results: ExecResults, queued: number): Promise<void> {
    staging.closed = true;
    if (!results || results.some(([error]) => error)) return;
    const offset = queued - results.length; // 1 for a MULTI: its results start after MULTI
    const failures = await runAfterCommits(
      staging.commits.map((commit) => async () => {
        if (await this.docs.finish(commit.prepared, results[commit.position - offset]?.[1])) await commit.applied();
        else await commit.lost();
      }),
    );
    throwFailures(failures, 'Redis');
  }

  /** The reference's hold changed between stage and EXEC: the transaction committed, so the defer is made now. */
  private async createAfresh(staged: StagedDefer, afterCommit: () => Promise<void>): Promise<void> {
    if (await createStaged({ state: this.state, payloads: this.payloads }, staged, Date.now())) await afterCommit();
  }

  /** A MULTI of the user's own: wrap its exec once so that the enqueues follow EXEC. */
  private wrap(transaction: ChainableCommander): Staging {
    const staging = this.own(transaction);
    const exec = transaction.exec;
    const hook = this;
    transaction.exec = function execThenEnqueue(this: ChainableCommander, callback?: Parameters<ChainableCommander['exec']>[0]) {
      // ioredis calls exec again itself when it retries a redirected Cluster pipeline.
      if (staging.closed) return exec.call(this, callback);
      const queued = this.length;
      staging.closed = true;
      const done = exec.call(this).then(async (results) => {
        await hook.afterExec(staging, results, queued);
        return results;
      });
      notify(done, callback);
      return done;
    };
    return staging;
  }
}
