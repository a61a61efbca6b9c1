import type { Indexes } from './indexes.js';
import type { KeyLayout } from './keys.js';
import type { RedisClient, Scripts } from './scripts.js';

/** What the stores of one redisStores() call share. */
export interface AdapterContext {
  readonly client: RedisClient;
  readonly layout: KeyLayout;
  readonly scripts: Scripts;
  readonly indexes: Indexes;
  /** Cluster: scripts touch one slot only and the adapter writes the indexes after them. */
  readonly cluster: boolean;
  /** Wrap a backend call so that connection failures become STORE_UNAVAILABLE. */
  guard<T>(action: string, work: () => Promise<T>): Promise<T>;
}
