/**
 * One page of a Swift container listing (`GET /container?format=json&prefix=&marker=&limit=`).
 * Swift lists names in byte order and at most `container_listing_limit` (10,000) per request;
 * the caller pages on with the last name as the next marker. A static large object lists at
 * its full size (the SLO middleware overrides the container record's size).
 */
import { z } from 'zod';
import { StoreError } from '../../core/errors.js';
import { objectPath, type SwiftClient } from './swift-client.js';

/** One listed object. */
export interface ListedObject {
  readonly name: string;
  readonly bytes: number;
  readonly mtimeMs: number;
}

/** What to list. */
export interface ListPageRequest {
  readonly container: string;
  readonly prefix: string;
  /** Names strictly after this one. */
  readonly marker: string | undefined;
  readonly limit: number;
  /** For messages. */
  readonly what: string;
  readonly signal: AbortSignal | undefined;
}

const ITEM = z.union([
  z.object({ name: z.string(), bytes: z.number().int().nonnegative(), last_modified: z.string() }),
  z.object({ subdir: z.string() }),
]);
const PAGE = z.array(ITEM);

/** `2024-05-01T12:34:56.123450` (UTC, no zone) -> ms since the epoch. */
export function parseListingTime(text: string): number {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isFinite(ms) ? ms : 0;
}

/** Fetches one page; an absent container lists as empty. */
export async function listPage(client: SwiftClient, req: ListPageRequest): Promise<ListedObject[]> {
  const query: Record<string, string> = { format: 'json', limit: String(req.limit) };
  if (req.prefix !== '') query['prefix'] = req.prefix;
  if (req.marker !== undefined && req.marker !== '') query['marker'] = req.marker;
  const reply = await client.call({
    op: 'list',
    what: req.what,
    method: 'GET',
    path: objectPath(req.container),
    query,
    headers: { accept: 'application/json' },
    ok: [200, 204, 404],
    signal: req.signal,
  });
  if (reply.status !== 200 || reply.body.byteLength === 0) return [];
  let items: z.output<typeof PAGE>;
  try {
    items = PAGE.parse(JSON.parse(reply.body.toString('utf8')));
  } catch (err) {
    throw new StoreError('STORE_IO', `swift:${req.container}: list ${req.what}: the listing is not the JSON Swift sends`, { cause: err });
  }
  const out: ListedObject[] = [];
  for (const item of items) {
    if ('name' in item) out.push({ name: item.name, bytes: item.bytes, mtimeMs: parseListingTime(item.last_modified) });
  }
  return out;
}
