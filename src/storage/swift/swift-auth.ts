/**
 * Swift authentication: tempauth v1 (GET with X-Auth-User/X-Auth-Key), Keystone v2
 * (POST /tokens, passwordCredentials + tenantName) and Keystone v3 (POST /auth/tokens,
 * password method, project scope; the token is the X-Subject-Token header), each ending in a
 * token and the account's storage URL. Keystone catalogs are searched for the `object-store`
 * service in the configured region and interface.
 *
 * Tokens and passwords never appear in errors or descriptions.
 */
import { z } from 'zod';
import { StoreError } from '../../core/errors.js';
import type { SwiftStoreOptions } from './swift-options.js';

/** What authentication yields. */
export interface SwiftAuthResult {
  readonly token: string;
  /** The account URL, e.g. `http://proxy:8080/v1/AUTH_test` (no trailing slash). */
  readonly storageUrl: string;
  /** When the token expires (ms since the epoch), if the service said. */
  readonly expiresAtMs: number | undefined;
}

/** One HTTP exchange as the auth code needs it (the caller adds retries and timeouts). */
export interface AuthExchange {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

/** The answer to an AuthExchange: status, lower-case headers and the body text. */
export interface AuthReply {
  readonly status: number;
  header(name: string): string | undefined;
  readonly text: string;
}

/** Sends one exchange (with retries on network errors and 5xx). */
export type AuthSend = (exchange: AuthExchange) => Promise<AuthReply>;

/** A catalog endpoint, normalised across Keystone v2 and v3. */
export interface CatalogEndpoint {
  readonly region: string | undefined;
  /** `public`, `internal` or `admin`. */
  readonly interface: string;
  readonly url: string;
}

/** A catalog service entry, normalised across Keystone v2 and v3. */
export interface CatalogService {
  readonly type: string;
  readonly endpoints: readonly CatalogEndpoint[];
}

/** `internalURL` or `internal` -> `internal` (v3's interface names). */
export function interfaceOf(endpointType: string): string {
  return endpointType.toLowerCase().replace(/url$/, '');
}

/** A URL for messages: scheme, host and path, never user info or query. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

function authError(opts: SwiftStoreOptions, message: string, cause?: unknown): StoreError {
  return new StoreError('STORE_IO', `swift auth v${opts.authVer} at ${safeUrl(opts.authUrl)}: ${message}`, cause === undefined ? {} : { cause });
}

/**
 * Picks the object-store endpoint for a region and interface (DESIGN.md section 3: the
 * seed's region_name and endpoint_type). Throws with what the catalog does offer.
 */
export function selectEndpoint(catalog: readonly CatalogService[], region: string, endpointType: string): string {
  const services = catalog.filter((s) => s.type === 'object-store');
  if (services.length === 0) {
    const types = [...new Set(catalog.map((s) => s.type))].join(', ') || 'none';
    throw new StoreError('STORE_IO', `the service catalog lists no object-store service (services: ${types})`);
  }
  const iface = interfaceOf(endpointType);
  const endpoints = services.flatMap((s) => s.endpoints);
  const inRegion = endpoints.filter((e) => e.region === region);
  const hit = inRegion.find((e) => e.interface === iface);
  if (hit !== undefined) return hit.url.replace(/\/+$/, '');
  if (inRegion.length === 0) {
    const regions = [...new Set(endpoints.map((e) => e.region ?? '(none)'))].join(', ');
    throw new StoreError('STORE_IO', `the object-store service has no endpoint in region ${region} (regions: ${regions}); set region_name`);
  }
  const ifaces = [...new Set(inRegion.map((e) => e.interface))].join(', ');
  throw new StoreError('STORE_IO', `the object-store service in region ${region} has no ${iface} endpoint (has: ${ifaces}); set endpoint_type`);
}

const V2_REPLY = z.object({
  access: z.object({
    token: z.object({ id: z.string().min(1), expires: z.string().optional() }),
    serviceCatalog: z
      .array(
        z.object({
          type: z.string(),
          endpoints: z.array(
            z.object({
              region: z.string().optional(),
              publicURL: z.string().optional(),
              internalURL: z.string().optional(),
              adminURL: z.string().optional(),
            }),
          ),
        }),
      )
      .default([]),
  }),
});

const V3_REPLY = z.object({
  token: z.object({
    expires_at: z.string().optional(),
    catalog: z
      .array(
        z.object({
          type: z.string(),
          endpoints: z.array(
            z.object({
              interface: z.string(),
              region: z.string().nullish(),
              region_id: z.string().nullish(),
              url: z.string(),
            }),
          ),
        }),
      )
      .default([]),
  }),
});

/** The v2 catalog in the shared shape. */
export function catalogFromV2(reply: unknown): CatalogService[] {
  const parsed = V2_REPLY.parse(reply);
  return parsed.access.serviceCatalog.map((s) => ({
    type: s.type,
    endpoints: s.endpoints.flatMap((e) =>
      (['public', 'internal', 'admin'] as const).flatMap((iface) => {
        const url = e[`${iface}URL`];
        return url === undefined ? [] : [{ region: e.region, interface: iface, url }];
      }),
    ),
  }));
}

/** The v3 catalog in the shared shape (`region_id` when `region` is missing). */
export function catalogFromV3(reply: unknown): CatalogService[] {
  const parsed = V3_REPLY.parse(reply);
  return parsed.token.catalog.map((s) => ({
    type: s.type,
    endpoints: s.endpoints.map((e) => ({ region: e.region ?? e.region_id ?? undefined, interface: e.interface, url: e.url })),
  }));
}

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function splitUser(username: string): { tenant: string; user: string } {
  const cut = username.indexOf(';');
  return { tenant: username.slice(0, cut), user: username.slice(cut + 1) };
}

/** The Keystone URL for an API version: `…/v2.0/tokens` or `…/v3/auth/tokens`. */
export function keystoneTokensUrl(authUrl: string, version: 2 | 3): string {
  const base = authUrl.replace(/\/+$/, '');
  if (version === 2) {
    if (/\/tokens$/.test(base)) return base;
    return /\/v2(\.0)?$/.test(base) ? `${base}/tokens` : `${base}/v2.0/tokens`;
  }
  if (/\/auth\/tokens$/.test(base)) return base;
  if (/\/v3$/.test(base)) return `${base}/auth/tokens`;
  return /\/v2(\.0)?$/.test(base) ? `${base.replace(/\/v2(\.0)?$/, '')}/v3/auth/tokens` : `${base}/v3/auth/tokens`;
}

function failure(opts: SwiftStoreOptions, reply: AuthReply): StoreError {
  const user = opts.authVer === 1 ? opts.username : splitUser(opts.username).user;
  if (reply.status === 401 || reply.status === 403) {
    return authError(opts, `HTTP ${reply.status}: user ${JSON.stringify(user)} was refused; check username and password`);
  }
  return authError(opts, `HTTP ${reply.status} (expected 200/201)`);
}

function jsonOf(opts: SwiftStoreOptions, reply: AuthReply): unknown {
  try {
    return JSON.parse(reply.text) as unknown;
  } catch (err) {
    throw authError(opts, 'the reply is not JSON', err);
  }
}

async function authV1(opts: SwiftStoreOptions, send: AuthSend): Promise<SwiftAuthResult> {
  // Tempauth wants account:user; accept Dulwich's tenant;user too.
  const user = opts.username.includes(';') ? opts.username.replace(';', ':') : opts.username;
  const reply = await send({ method: 'GET', url: opts.authUrl, headers: { 'x-auth-user': user, 'x-auth-key': opts.password } });
  if (reply.status < 200 || reply.status > 299) throw failure(opts, reply);
  const token = reply.header('x-auth-token') ?? reply.header('x-storage-token');
  const storageUrl = reply.header('x-storage-url');
  if (token === undefined || token === '' || storageUrl === undefined || storageUrl === '') {
    throw authError(opts, 'the reply lacks X-Auth-Token or X-Storage-Url');
  }
  const ttl = Number(reply.header('x-auth-token-expires'));
  return {
    token,
    storageUrl: storageUrl.replace(/\/+$/, ''),
    expiresAtMs: Number.isFinite(ttl) && ttl > 0 ? Date.now() + ttl * 1000 : undefined,
  };
}

async function authV2(opts: SwiftStoreOptions, send: AuthSend): Promise<SwiftAuthResult> {
  const { tenant, user } = splitUser(opts.username);
  const body = { auth: { passwordCredentials: { username: user, password: opts.password }, tenantName: tenant } };
  const reply = await send({
    method: 'POST',
    url: keystoneTokensUrl(opts.authUrl, 2),
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  });
  if (reply.status !== 200 && reply.status !== 201 && reply.status !== 203) throw failure(opts, reply);
  const json = jsonOf(opts, reply);
  let parsed: z.output<typeof V2_REPLY>;
  try {
    parsed = V2_REPLY.parse(json);
  } catch (err) {
    throw authError(opts, 'the reply is not a Keystone v2 token', err);
  }
  const storageUrl = opts.storageUrl ?? pick(opts, () => selectEndpoint(catalogFromV2(json), opts.regionName, opts.endpointType));
  return { token: parsed.access.token.id, storageUrl, expiresAtMs: parseTime(parsed.access.token.expires) };
}

async function authV3(opts: SwiftStoreOptions, send: AuthSend): Promise<SwiftAuthResult> {
  const { tenant, user } = splitUser(opts.username);
  const body = {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { name: opts.userDomainName }, password: opts.password } },
      },
      scope: { project: { name: tenant, domain: { name: opts.projectDomainName } } },
    },
  };
  const reply = await send({
    method: 'POST',
    url: keystoneTokensUrl(opts.authUrl, 3),
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  });
  if (reply.status !== 200 && reply.status !== 201) throw failure(opts, reply);
  const token = reply.header('x-subject-token');
  if (token === undefined || token === '') throw authError(opts, 'the reply lacks X-Subject-Token');
  const json = jsonOf(opts, reply);
  let parsed: z.output<typeof V3_REPLY>;
  try {
    parsed = V3_REPLY.parse(json);
  } catch (err) {
    throw authError(opts, 'the reply is not a Keystone v3 token', err);
  }
  const storageUrl = opts.storageUrl ?? pick(opts, () => selectEndpoint(catalogFromV3(json), opts.regionName, opts.endpointType));
  return { token, storageUrl, expiresAtMs: parseTime(parsed.token.expires_at) };
}

function pick(opts: SwiftStoreOptions, select: () => string): string {
  try {
    return select();
  } catch (err) {
    throw authError(opts, err instanceof Error ? err.message : String(err), err);
  }
}

/** Authenticates once; the storage URL option, when set, replaces the one the service names. */
export async function authenticate(opts: SwiftStoreOptions, send: AuthSend): Promise<SwiftAuthResult> {
  let result: SwiftAuthResult;
  switch (opts.authVer) {
    case 1:
      result = await authV1(opts, send);
      break;
    case 2:
      result = await authV2(opts, send);
      break;
    case 3:
      result = await authV3(opts, send);
      break;
  }
  return opts.storageUrl === undefined ? result : { ...result, storageUrl: opts.storageUrl.replace(/\/+$/, '') };
}
