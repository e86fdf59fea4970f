/**
 * The shared shape of backend URLs (`s3://BUCKET/PREFIX?…`, `etcd://H:P,H:P/PREFIX?…`): the
 * authority, a percent-decoded path, and query keys matched case-insensitively with `_`/`-`
 * ignored (as config keys are). Unknown or repeated keys and credentials in the authority are
 * refused with the caller's error, so every backend answers bad URLs alike.
 */

/** One query setting: the key as written, the option it names, its decoded value. */
export interface BackendUrlParam<K extends string> {
  readonly key: string;
  readonly option: K;
  readonly value: string;
}

export interface BackendUrl<K extends string> {
  readonly authority: string;
  /** Percent-decoded, as written after the authority (may be empty or start with `/`). */
  readonly path: string;
  readonly params: readonly BackendUrlParam<K>[];
}

export interface BackendUrlRules<K extends string> {
  readonly scheme: string;
  /** Shown when the URL does not parse at all, e.g. `s3://BUCKET/PREFIX?endpoint=…`. */
  readonly example: string;
  /** Where credentials go instead of `user@` in the authority. */
  readonly credentialsHint: string;
  /** Query keys, normalised (lowercase, no `_` or `-`), to options. */
  readonly keys: Readonly<Record<string, K>>;
  readonly fail: (message: string) => Error;
}

function decode(text: string, what: string, fail: (message: string) => Error): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw fail(`${what} is not valid percent-encoding`);
  }
}

/** Splits and checks a backend URL; values keep a literal `+` (only %-escapes are decoded). */
export function parseBackendUrl<K extends string>(url: string, rules: BackendUrlRules<K>): BackendUrl<K> {
  const m = new RegExp(`^${rules.scheme}://([^/?#]*)([^?#]*)(?:\\?([^#]*))?$`, 'i').exec(url.trim());
  if (m === null) throw rules.fail(`expected ${rules.example}`);
  const authority = m[1] ?? '';
  if (authority.includes('@')) throw rules.fail(`credentials do not belong in the URL (${rules.credentialsHint})`);
  const path = decode(m[2] ?? '', 'the path', rules.fail);
  const seen = new Set<K>();
  const params: BackendUrlParam<K>[] = [];
  for (const pair of (m[3] ?? '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq), 'a query key', rules.fail);
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1), `the value of ${key}`, rules.fail);
    const option = rules.keys[key.toLowerCase().replace(/[-_]/g, '')];
    if (option === undefined) {
      throw rules.fail(`unknown query key ${JSON.stringify(key)} (known: ${Object.keys(rules.keys).join(', ')})`);
    }
    if (seen.has(option)) throw rules.fail(`query key ${JSON.stringify(key)} is given twice`);
    seen.add(option);
    params.push({ key, option, value });
  }
  return { authority, path, params };
}
