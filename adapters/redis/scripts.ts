/**
 * The Lua scripts in ./lua, one file per script (lua/<name>.lua), loaded by name at run time and
 * registered on the client with ioredis' defineCommand (EVALSHA, falling back to EVAL when the
 * server does not know the script yet). A line `--@include name` inlines lua/includes/name.lua,
 * so helpers shared by several scripts are written once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

export function isClusterClient(client: RedisClient): client is Cluster {
  return client.isCluster;
}
/** The file name of a script in lua/, without ".lua" (e.g. "createTask"). */
export type ScriptName = string;
export type ScriptArg = string | number | Buffer;

const INCLUDE = /^--@include\s+(\w+)\s*$/gm;

function loadScript(dir: string, name: string): string {
  const source = readFileSync(path.join(dir, `${name}.lua`), 'utf8');
  return source.replace(INCLUDE, (_line, include: string) => readFileSync(path.join(dir, 'includes', `${include}.lua`), 'utf8'));
}

let sources: ReadonlyMap<ScriptName, string> | undefined;

/** Every lua/*.lua file, read once per process. */
function scriptSources(): ReadonlyMap<ScriptName, string> {
  if (!sources) {
    const dir = path.join(__dirname, 'lua');
    const names = readdirSync(dir)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => file.slice(0, -'.lua'.length));
    sources = new Map(names.map((name) => [name, loadScript(dir, name)]));
  }
  return sources;
}

function sourceOf(name: ScriptName): string {
  const lua = scriptSources().get(name);
  if (lua === undefined) throw new Error(`cloud-defer/redis: there is no script lua/${name}.lua`);
  return lua;
}

/** The command name a script is registered under on the client: cloudDefer + its name. */
export function commandName(name: ScriptName): string {
  return `cloudDefer${name[0]!.toUpperCase()}${name.slice(1)}`;
}

type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: ScriptArg[]) => Promise<unknown>;

export class Scripts {
  constructor(private readonly client: RedisClient) {
    for (const [name, lua] of scriptSources()) client.defineCommand(commandName(name), { lua });
  }

  run(name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    sourceOf(name);
    const command = (this.client as unknown as Record<string, ScriptCommand>)[commandName(name)]!;
    return command.call(this.client, keys.length, ...keys, ...args);
  }

  /**
   * Queue a script into a MULTI as a plain EVAL: a NOSCRIPT error inside a transaction would only
   * show at EXEC, too late to fall back, so the transaction carries the script text itself.
   */
  queue(transaction: ChainableCommander, name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): void {
    transaction.eval(sourceOf(name), keys.length, ...keys, ...args);
  }
}
