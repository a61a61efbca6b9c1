/**
 * The Lua scripts in ./lua (commit.lua, countAttempt.lua), registered on the client with ioredis'
 * defineCommand as cloudDefer<Name> (EVALSHA, falling back to EVAL when the server lacks it).
 * ioredis copies defined commands onto the client's pipelines and MULTIs, which is how the
 * transaction hook knows a MULTI of this client.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;
export type ScriptArg = string | number | Buffer;
type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: ScriptArg[]) => Promise<unknown>;

const sources = new Map<string, string>();

export function luaSource(name: 'commit' | 'countAttempt'): string {
  let lua = sources.get(name);
  if (lua === undefined) sources.set(name, (lua = readFileSync(path.join(__dirname, 'lua', `${name}.lua`), 'utf8')));
  return lua;
}

/** The client's command running `name`, defined on first use (a second redisStores() on a client shares it). */
export function scriptCommand(client: RedisClient, name: 'commit' | 'countAttempt'): ScriptCommand {
  const command = `cloudDefer${name[0]!.toUpperCase()}${name.slice(1)}`;
  const commands = client as unknown as Record<string, ScriptCommand | undefined>;
  if (typeof commands[command] !== 'function') client.defineCommand(command, { lua: luaSource(name) });
  return commands[command]!;
}
