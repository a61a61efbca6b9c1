import { CloudDeferError, rethrownAs } from '../../src/core/errors.js';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './scripts.js';

/** Replies that mean the server is there but cannot serve right now. */
const UNAVAILABLE_REPLIES = /^(LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS)\b/;
/** ioredis' own errors when it has no usable connection. */
const CONNECTION_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError', 'AbortError', 'InterruptError']);
const CONNECTION_MESSAGES = /Connection is closed|enableOfflineQueue|Command timed out|startup nodes|slots cache|Too many Cluster redirections/i;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function isUnavailable(error: Error): boolean {
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLIES.test(error.message);
  const code = (error as { code?: unknown }).code;
  return CONNECTION_ERROR_NAMES.has(error.name) || CONNECTION_MESSAGES.test(error.message) || (typeof code === 'string' && NETWORK_CODES.has(code));
}

function describeServer(client: RedisClient): string {
  if (client.isCluster) {
    const cluster = client as Cluster;
    const nodes = cluster.nodes().map((node) => `${node.options.host}:${node.options.port}`);
    return nodes.length ? `Redis Cluster (nodes ${nodes.join(', ')})` : 'Redis Cluster (no node reachable yet)';
  }
  const { host, port, path } = (client as Redis).options;
  return path ? `Redis at ${path}` : `Redis at ${host ?? 'localhost'}:${port ?? 6379}`;
}

/**
 * A failure to reach Redis becomes CloudDeferError STORE_UNAVAILABLE saying what to check. Error
 * replies from a reachable server (a script error, WRONGTYPE...) and anything else pass through.
 */
export function toStoreError(client: RedisClient, action: string, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof CloudDeferError || !isUnavailable(error)) return error;
  const message = error.message;
  return new CloudDeferError(
    'STORE_UNAVAILABLE',
    `cloud-defer could not ${action}: ${describeServer(client)} did not answer (client status "${client.status}": ${message}). ` +
      "Check that the server is running and reachable from this process, and the client's host, port, password and TLS options; " +
      "how long a command waits for a connection is set by the client's own maxRetriesPerRequest, enableOfflineQueue and retryStrategy.",
    { cause: error },
  );
}

export const guarded = <T>(client: RedisClient, action: string, work: () => Promise<T>): Promise<T> =>
  rethrownAs(work, (error) => toStoreError(client, action, error));
