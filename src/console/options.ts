/** What a user configures for the web console, and what the authorize hook is given. */
import type { NeutralRequest } from '../http/handler.js';

export const DEFAULT_CONSOLE_PATH = '/_ah/deferred/console';

/** The request as the authorize hook sees it: method, path, query, headers, remote address. */
export type ConsoleRequest = Omit<NeutralRequest, 'readBody'>;

/** Who is using the console, as the authorize hook says: logged with every action. */
export type ConsolePrincipal = string | { readonly [key: string]: unknown };

/**
 * A principal lets the request in. `undefined`/`null` means "not signed in" (401); `false` means
 * "signed in but not allowed" (403). A hook that throws refuses too (403, logged).
 */
export type ConsoleAuthorization = ConsolePrincipal | false | null | undefined;

export interface ConsoleOptions {
  authorize(request: ConsoleRequest): ConsoleAuthorization | Promise<ConsoleAuthorization>;
  /** Where the page and its API live. Default `/_ah/deferred/console`. */
  path?: string;
  /**
   * The queue figures count at most this many records per status and queue (newest first);
   * beyond it they are marked approximate. Default 1000.
   */
  statsScanLimit?: number;
  /** How often the page refreshes itself. Default 3000 ms. */
  pollIntervalMs?: number;
  /**
   * Origins (scheme://host:port) allowed to send actions besides the console's own host, e.g.
   * when a proxy rewrites the Host header. Default none.
   */
  allowedOrigins?: readonly string[];
}
