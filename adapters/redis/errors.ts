import { CloudDeferError } from '../../src/core/errors.js';
import { isClusterClient, type RedisClient } from './scripts.js';

/** Replies that mean the server is there but cannot serve right now. */
const UNAVAILABLE_REPLIES = /^(LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS)\b/;

function describeServer(client: RedisClient): string {
  if (isClusterClient(client)) {
    const nodes = client.nodes().map((node) => `${node.options.host}:${node.options.port}`);
    return nodes.length ? `Redis Cluster (nodes ${nodes.join(', ')})` : 'Redis Cluster (no node reachable yet)';
  }
  const { host, port, path } = client.options;
  return path ? `Redis at ${path}` : `Redis at ${host ?? 'localhost'}:${port ?? 6379}`;
}

/**
 * A failure to reach Redis becomes CloudDeferError STORE_UNAVAILABLE saying what to check. Error
 * replies from a reachable server (a script error, WRONGTYPE...) are passed through unchanged.
 */
export function toStoreError(client: RedisClient, action: string, error: unknown): unknown {
  if (error instanceof CloudDeferError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const isReply = error instanceof Error && error.name === 'ReplyError';
  if (isReply && !UNAVAILABLE_REPLIES.test(message)) return error;
  return new CloudDeferError(
    'STORE_UNAVAILABLE',
    `cloud-defer could not ${action}: ${describeServer(client)} did not answer (client status "${client.status}": ${message}). ` +
      'Check that the server is running and reachable from this process, and the client\'s host, port, password and TLS options; ' +
      'how long a command waits for a connection is set by the client\'s own maxRetriesPerRequest, enableOfflineQueue and retryStrategy.',
    { cause: error },
  );
}

export async function guarded<T>(client: RedisClient, action: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toStoreError(client, action, error);
  }
}
