/**
 * The default instance, as App Engine's `deferred` module has one: `task`, `defer` and
 * `deferredMiddleware()` work with no createDeferred() call; `configure()` picks its stores,
 * queues and the rest before first use.
 */
import { createDeferred, Deferred, type CreateDeferredOptions } from './deferred.js';
import type { DeferOptions, DeferredTask, TaskInfo } from './core/engine.js';
import { CloudDeferError } from './core/errors.js';
import type { TaskDefaults } from './core/registry.js';
import type { DeferIterationOptions, IterationInfo } from './iteration/iteration.js';
import type { SourceSpec } from './core/iteration.js';

let instance: Deferred | undefined;
/** Set once the instance is used (mounted, deferred to, started): configure() may no longer replace it. */
let inUse = false;
/** Tasks registered on the default, replayed onto the instance configure() builds. */
const registrations: Array<{ name: string; fn: (...args: never[]) => unknown; defaults?: TaskDefaults }> = [];

function current(): Deferred {
  instance ??= createDeferred();
  return instance;
}

/** The default instance (built with default options unless configure() ran first); marks it in use. */
export function defaultDeferred(): Deferred {
  inUse = true;
  return current();
}

/**
 * Configure the default instance. Call it once at start-up, before deferredMiddleware(), defer() or
 * ready(); tasks registered earlier with task() are kept.
 */
export function configure(options: CreateDeferredOptions = {}): Deferred {
  if (inUse) {
    throw new CloudDeferError(
      'INVALID_OPTION',
      'configure() was called after the default instance was already in use (mounted, started or deferred to). Call configure() first, at start-up, or build a separate engine with createDeferred().',
    );
  }
  const next = createDeferred(options);
  for (const r of registrations) next.task(r.name, r.fn, r.defaults);
  instance = next;
  return next;
}

/** Register a task on the default instance; the handle defers on whichever instance configure() left. */
export function task<A extends unknown[]>(name: string, fn: (...args: A) => unknown, defaults?: TaskDefaults): DeferredTask<A> {
  current().task(name, fn, defaults);
  registrations.push({ name, fn: fn as (...args: never[]) => unknown, ...(defaults ? { defaults } : {}) });
  const handle: DeferredTask<A> = {
    name,
    fn,
    defer: (...args: A) => defaultDeferred().defer(handle, args),
    with: (options: DeferOptions) => ({ defer: (...args: A) => defaultDeferred().defer(handle, args, options) }),
  };
  return handle;
}

/** Defer a task (handle, registered function or name) on the default instance. */
export function defer<A extends unknown[]>(target: DeferredTask<A> | ((...args: A) => unknown) | string, args: A, options?: DeferOptions): Promise<TaskInfo> {
  return defaultDeferred().defer(target, args, options);
}

/** deferIteration() on the default instance. */
export function deferIteration<Item, A extends unknown[] = []>(
  source: readonly Item[] | SourceSpec,
  callback: DeferredTask<[Item, ...A]>,
  finalize: DeferredTask<A>,
  options?: DeferIterationOptions<A>,
): Promise<IterationInfo> {
  return defaultDeferred().deferIteration(source, callback, finalize, options);
}

/** Start the default instance's transport and queues now (see Deferred.ready()). */
export async function ready(): Promise<void> {
  await defaultDeferred().ready();
}

/**
 * The engine a middleware factory was given, or the default one when given nothing. Anything else
 * fails here, at app.use() time, rather than on every request.
 */
export function engineFor(deferred: unknown, factory: string): Deferred {
  if (deferred === undefined) return defaultDeferred();
  if (deferred instanceof Deferred) return deferred;
  const what =
    deferred === null
      ? 'null'
      : typeof deferred === 'object'
        ? `an object with keys ${Object.keys(deferred).slice(0, 5).join(', ') || '(none)'}`
        : typeof deferred;
  throw new CloudDeferError(
    'INVALID_OPTION',
    `${factory}() takes the engine createDeferred() returns, or nothing for the default instance; it was given ${what}. Write ${factory}() or ${factory}(createDeferred({ ... })).`,
  );
}

const starting = new WeakSet<Deferred>();

/**
 * Mounting is start-up: begin the transport and queue set-up now, so the first defer does not pay
 * for it inside a user's request. A failure is logged here once; defers then reject with it.
 */
export function startInBackground(deferred: Deferred): void {
  if (starting.has(deferred)) return;
  // The embedded emulator fixes the app's address when it starts: with no PORT (or PORT=0, the OS
  // picks) and no target URL the port is not known yet (setTargetUrl later), so it starts at the
  // first defer or ready().
  const port = Number(process.env.PORT ?? 0);
  if (deferred.mode === 'embedded' && !(port > 0) && !deferred.hasTargetUrl()) return;
  starting.add(deferred);
  deferred.ready().catch((err: unknown) => {
    deferred.logger.error(`could not start: ${err instanceof Error ? err.message : String(err)} (every defer fails with this error until it is fixed)`, {
      ...(err instanceof CloudDeferError ? { code: err.code } : {}),
    });
  });
}
