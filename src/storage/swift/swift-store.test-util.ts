/**
 * Test support for the Swift store tests: the shared Swift AIO (test/infra/services.ts), store
 * settings for a container on it, and a plain client for looking and cleaning up behind the
 * store's back (tempauth token, raw requests, bulk delete of a container and its segments).
 */
import { request } from 'undici';
import { requireSwift, type SwiftTestEnv } from '../../../test/infra/services.js';
import type { SwiftSettings } from './swift-options.js';

/** The shared Swift AIO, or undefined (CI: throws) when the run has none. */
export function swiftTarget(what: string): SwiftTestEnv | undefined {
  return requireSwift(what);
}

/** Store settings for `container` on the AIO. */
export function settingsFor(env: SwiftTestEnv, container: string, extra: SwiftSettings = {}): SwiftSettings {
  return { authUrl: env.authUrl, authVer: 1, username: env.user, password: env.key, container, ...extra };
}

/** A raw session on the AIO, independent of any store. */
export interface AdminSession {
  readonly token: string;
  readonly storageUrl: string;
}

/** Authenticates with tempauth. */
export async function adminSession(env: SwiftTestEnv): Promise<AdminSession> {
  const res = await request(env.authUrl, { headers: { 'x-auth-user': env.user, 'x-auth-key': env.key } });
  await res.body.dump();
  const token = res.headers['x-auth-token'];
  const storageUrl = res.headers['x-storage-url'];
  if (res.statusCode !== 200 || typeof token !== 'string' || typeof storageUrl !== 'string') {
    throw new Error(`tempauth at ${env.authUrl} answered ${res.statusCode}`);
  }
  return { token, storageUrl };
}

/** A raw request below the storage URL; returns status, headers and body text. */
export async function raw(
  s: AdminSession,
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const res = await request(`${s.storageUrl}${path}`, {
    method,
    headers: { 'x-auth-token': s.token, ...opts.headers },
    body: opts.body ?? null,
  });
  const text = method === 'HEAD' ? '' : await res.body.text();
  if (method === 'HEAD') await res.body.dump();
  return { status: res.statusCode, headers: res.headers, text };
}

/** Every object name in a container ([] when it does not exist). */
export async function listNames(s: AdminSession, container: string): Promise<string[]> {
  const names: string[] = [];
  let marker = '';
  for (;;) {
    const q = `?format=json&limit=10000${marker === '' ? '' : `&marker=${encodeURIComponent(marker)}`}`;
    const res = await raw(s, 'GET', `/${encodeURIComponent(container)}${q}`);
    if (res.status === 404 || res.status === 204) return names;
    if (res.status !== 200) throw new Error(`listing ${container}: HTTP ${res.status}`);
    const page = JSON.parse(res.text) as Array<{ name: string }>;
    if (page.length === 0) return names;
    names.push(...page.map((p) => p.name));
    marker = page[page.length - 1]?.name ?? '';
  }
}

/** Deletes a container and `<container>+segments` with everything in them. */
export async function dropContainer(env: SwiftTestEnv, container: string): Promise<void> {
  const s = await adminSession(env);
  for (const c of [container, `${container}+segments`]) {
    const names = await listNames(s, c);
    for (let i = 0; i < names.length; i += 5000) {
      const body = names
        .slice(i, i + 5000)
        .map((n) => `/${encodeURIComponent(c)}/${n.split('/').map(encodeURIComponent).join('/')}`)
        .join('\n');
      const res = await raw(s, 'POST', '/?bulk-delete', { headers: { 'content-type': 'text/plain', accept: 'application/json' }, body });
      if (res.status !== 200) throw new Error(`bulk delete in ${c}: HTTP ${res.status}`);
    }
    const del = await raw(s, 'DELETE', `/${encodeURIComponent(c)}`);
    if (del.status !== 204 && del.status !== 404) throw new Error(`deleting container ${c}: HTTP ${del.status} ${del.text}`);
  }
}
