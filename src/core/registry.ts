/** Registered tasks: the only functions a delivery may run, looked up by name. */
import { CloudDeferError } from './errors.js';

// Task functions may take any arguments; `never[]` keeps the registry's storage type-safe.
export type TaskFunction<A extends unknown[] = never[]> = (...args: A) => unknown;

export interface TaskDefaults {
  /** Queue used when defer() names none. */
  queue?: string;
  /** Attempts this task may make before it is recorded failed (counts the first). */
  maxAttempts?: number;
}

export interface RegisteredTask {
  readonly name: string;
  readonly fn: TaskFunction;
  readonly defaults: TaskDefaults;
}

const TASK_NAME = /^[A-Za-z0-9_.:\-/]{1,200}$/;

export class TaskRegistry {
  private readonly byName = new Map<string, RegisteredTask>();
  private readonly byFunction = new Map<unknown, RegisteredTask>();

  register(name: string, fn: TaskFunction, defaults: TaskDefaults = {}): RegisteredTask {
    if (!TASK_NAME.test(name)) {
      throw new CloudDeferError('INVALID_OPTION', `Task name "${name}" is not valid: use 1-200 letters, digits, '_', '-', '.', ':' or '/'.`);
    }
    if (typeof fn !== 'function') {
      throw new CloudDeferError('INVALID_OPTION', `Task "${name}" needs a function to run.`);
    }
    if (this.byName.has(name)) {
      throw new CloudDeferError('DUPLICATE_TASK_NAME', `A task named "${name}" is already registered; task names must be unique in one app.`);
    }
    const task: RegisteredTask = { name, fn, defaults };
    this.byName.set(name, task);
    this.byFunction.set(fn, task);
    return task;
  }

  get(name: string): RegisteredTask | undefined {
    return this.byName.get(name);
  }

  /** A task handle, a registered function, or a registered name. */
  resolve(ref: unknown): RegisteredTask {
    const byRef = typeof ref === 'string' ? this.byName.get(ref) : this.byFunction.get(ref);
    if (byRef) return byRef;
    if (ref && typeof ref === 'object' && 'name' in ref && typeof ref.name === 'string') {
      const task = this.byName.get(ref.name);
      if (task) return task;
    }
    const what = typeof ref === 'function' ? `function ${ref.name || '(anonymous)'}` : JSON.stringify(ref);
    throw new CloudDeferError(
      'UNREGISTERED_TASK',
      `Cannot defer ${what}: it is not a registered task. Register it first with deferred.task('name', fn) and defer the returned handle (or the same function).`,
    );
  }
}
