/** Mount-path matching shared by the Express and Koa glue. */
import type { Deferred } from '../deferred.js';
import { header, type HeaderBag } from './auth.js';

export interface Route {
  handler: NonNullable<Deferred['consoleHandler']> | Deferred['handler'];
  /** The path in the handler's own terms (what handlerPath and console.path are written in). */
  path: string;
}

/**
 * The handler for a request, matching both the path relative to the mount point (`app.use('/tasks',
 * mw)` with the default handlerPath) and the full path (handlerPath '/tasks/_ah/queue/deferred').
 */
export function routeFor(deferred: Deferred, relativePath: string, fullPath: string): Route | undefined {
  for (const path of relativePath === fullPath ? [relativePath] : [relativePath, fullPath]) {
    if (deferred.consoleHandler?.owns(path)) return { handler: deferred.consoleHandler, path };
    if (deferred.handler.owns(path)) return { handler: deferred.handler, path };
  }
  return undefined;
}

export function pathWithoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const warned = new WeakSet<Deferred>();

/**
 * A Cloud Tasks delivery for this engine (task headers, a path ending like the handler path) that
 * reached the middleware at a path it does not serve would 404 and be retried for ever: say so
 * once, with the handlerPath to set. Deliveries for the app's own task routes are left alone.
 */
export function warnUnmatchedDelivery(deferred: Deferred, method: string, fullPath: string, mountPath: string, headers: HeaderBag): void {
  if (method !== 'POST' || warned.has(deferred)) return;
  if (header(headers, 'x-cloudtasks-taskname') === undefined && header(headers, 'x-appengine-taskname') === undefined) return;
  const tail = deferred.handlerPath.slice(deferred.handlerPath.lastIndexOf('/'));
  if (!fullPath.endsWith(tail)) return;
  warned.add(deferred);
  const mount = mountPath.replace(/\/+$/, '');
  const suggestion = mount && fullPath.startsWith(`${mount}/`) ? fullPath.slice(mount.length) : fullPath;
  deferred.logger.warn(
    `a Cloud Tasks delivery to ${fullPath} matched no handler path (this engine serves ${deferred.handlerPath}${mount ? ` under the mount ${mount}` : ''}), so it answers 404 and Cloud Tasks retries it. Set createDeferred({ handlerPath: '${suggestion}' }) or configure({ handlerPath: '${suggestion}' }), or point target.url at ${mount}${deferred.handlerPath}.`,
    { path: fullPath },
  );
}
