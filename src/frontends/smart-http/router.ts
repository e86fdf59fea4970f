/**
 * A small routes table for the HTTP frontend: each route says which methods it takes and
 * matches a decoded path, returning its parameters. Git routes match by suffix (a repository
 * name may contain `/`); the JSON API and LFS add their own routes to the same table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../core/log.js';

/** What a handler gets for one request. */
export interface HttpContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Percent-decoded path, starting with `/`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly reqId: string;
  readonly log: Logger;
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
}

export type RouteParams = Readonly<Record<string, string>>;

export interface Route {
  /** For logs. */
  readonly name: string;
  readonly methods: readonly string[];
  /** Errors on this route are answered as JSON `{code, message}` instead of text. */
  readonly json?: boolean;
  /** Parameters if the path is this route's, else undefined. */
  match(path: string): RouteParams | undefined;
  handle(ctx: HttpContext, params: RouteParams): Promise<void>;
}

export type RouteMatch =
  | { readonly kind: 'found'; readonly route: Route; readonly params: RouteParams }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[]; readonly json: boolean }
  | { readonly kind: 'none' };

/** The first route whose path and method match; a path match with another method gives 405. */
export function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch {
  let allow: string[] | undefined;
  let json = false;
  for (const route of routes) {
    const params = route.match(path);
    if (params === undefined) continue;
    if (route.methods.includes(method)) return { kind: 'found', route, params };
    allow = [...(allow ?? []), ...route.methods];
    json ||= route.json === true;
  }
  return allow === undefined ? { kind: 'none' } : { kind: 'method-not-allowed', allow: [...new Set(allow)], json };
}

/** A route for exactly one path. */
export function exactPath(path: string): (p: string) => RouteParams | undefined {
  return (p) => (p === path ? {} : undefined);
}

/**
 * A route for `/<repo><suffix>`: the repository is everything between the leading `/` and the
 * suffix (it may contain `/` and end in `.git`).
 */
export function repoSuffix(suffix: string): (p: string) => RouteParams | undefined {
  return (p) => {
    if (!p.endsWith(suffix) || p.length <= suffix.length + 1) return undefined;
    return { repo: p.slice(1, p.length - suffix.length) };
  };
}
