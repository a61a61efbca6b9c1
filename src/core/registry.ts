/** Registered tasks: the only functions a delivery may run, looked up by name. */
import { CloudDeferError } from './errors.js';

// Task functions may take any arguments; `never[]` keeps the registry's storage type-safe.
export type TaskFunction<A extends unknown[] = never[]> = (...args: A) => unknown;

export interface TaskDefaults {
  /** Queue used when defer() names none. */
  queue?: string;
  /** Attempts this task may make before it is recorded failed (counts the first). */
  maxAttempts?: number;
  /** Former names: deliveries deferred under them (say, before a deploy renamed the task) still run this task. */
  aliases?: readonly string[];
}

export interface RegisteredTask {
  readonly name: string;
  readonly fn: TaskFunction;
  readonly defaults: TaskDefaults;
}

const TASK_NAME = /^[A-Za-z0-9_.:\-/]{1,200}$/;
/** The library's own tasks (iteration) are not worth listing to a user. */
const INTERNAL_PREFIX = 'cloud-defer.';

export class TaskRegistry {
  private readonly byName = new Map<string, RegisteredTask>();
  private readonly byFunction = new Map<unknown, RegisteredTask>();
  /** alias -> the name it stands for. */
  private readonly aliasOf = new Map<string, string>();

  register(name: string, fn: TaskFunction, defaults: TaskDefaults = {}): RegisteredTask {
    if (!TASK_NAME.test(name)) {
      throw new CloudDeferError('INVALID_OPTION', `Task name "${name}" is not valid: use 1-200 letters, digits, '_', '-', '.', ':' or '/'.`);
    }
    if (typeof fn !== 'function') {
      throw new CloudDeferError('INVALID_OPTION', `Task "${name}" needs a function to run.`);
    }
    if (this.byName.has(name)) {
      throw new CloudDeferError(
        'DUPLICATE_TASK_NAME',
        `A task named "${name}" is already registered${this.aliasNote(name)}; task names must be unique in one app.`,
      );
    }
    const aliases = defaults.aliases ?? [];
    if (!Array.isArray(aliases)) throw new CloudDeferError('INVALID_OPTION', `Task "${name}": aliases must be an array of former task names.`);
    for (const alias of aliases) {
      if (typeof alias !== 'string' || !TASK_NAME.test(alias)) {
        throw new CloudDeferError(
          'INVALID_OPTION',
          `Task "${name}": alias "${String(alias)}" is not a valid task name (1-200 letters, digits, '_', '-', '.', ':' or '/').`,
        );
      }
      if (alias === name || this.byName.has(alias)) {
        throw new CloudDeferError(
          'DUPLICATE_TASK_NAME',
          `Task "${name}": the alias "${alias}" is already a registered name${this.aliasNote(alias)}; each name may lead to one task only.`,
        );
      }
    }
    const task: RegisteredTask = { name, fn, defaults };
    this.byName.set(name, task);
    for (const alias of aliases) {
      this.byName.set(alias, task);
      this.aliasOf.set(alias, name);
    }
    this.byFunction.set(fn, task);
    return task;
  }

  /** By its name or one of its aliases. */
  get(name: string): RegisteredTask | undefined {
    return this.byName.get(name);
  }

  /** What a delivery naming an unknown task logs: the names known here and how to map the old one. */
  unknownTaskMessage(name: string): string {
    const names = [...this.byName.keys()].filter((n) => !n.startsWith(INTERNAL_PREFIX) && !this.aliasOf.has(n)).sort();
    const listed = names.length > 0 ? names.map((n) => `"${n}"`).join(', ') : '(none)';
    return (
      `No task named "${name}" is registered in this app; registered: ${listed}. ` +
      `If "${name}" was renamed, register the new name with its old one: task('newName', fn, { aliases: ['${name}'] }).`
    );
  }

  private aliasNote(name: string): string {
    const target = this.aliasOf.get(name);
    return target ? ` (as an alias of "${target}")` : '';
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
