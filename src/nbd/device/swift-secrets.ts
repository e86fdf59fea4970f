/**
 * swiftnbd's `secrets.conf` (INI: `[container-name]` sections with username, password and an
 * optional authurl) read as volume definitions: each section names a volume. Credentials are
 * ignored (our store is configured elsewhere) and never returned. Optional keys we understand:
 * `size` (bytes or 1G/512M), `objects` (swiftnbd's number of 64 KiB objects), `block-size`
 * and `description`.
 */
import { ValidationError } from '../../core/errors.js';

/** A volume definition from one section. */
export interface SecretsVolume {
  readonly name: string;
  /** The size key as written, if any. */
  readonly size?: string;
  /** swiftnbd's object count (64 KiB objects), if given. */
  readonly objects?: number;
  readonly blockSize?: string;
  readonly description?: string;
}

const IGNORED = new Set(['username', 'password', 'authurl', 'auth-url', 'auth_url']);

/** Parses secrets.conf text; ValidationError('ARG_INVALID') names the bad line. */
export function parseSecretsConf(text: string): SecretsVolume[] {
  const out: { name: string; keys: Map<string, string> }[] = [];
  let current: { name: string; keys: Map<string, string> } | undefined;
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section !== null) {
      current = { name: (section[1] as string).trim(), keys: new Map() };
      out.push(current);
      return;
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*[=:]\s*(.*)$/.exec(line);
    if (kv === null || current === undefined) {
      throw new ValidationError('ARG_INVALID', `secrets file line ${n + 1}: expected [section] or key = value`);
    }
    current.keys.set((kv[1] as string).toLowerCase(), (kv[2] as string).trim());
  });
  return out.map(({ name, keys }) => {
    const objects = keys.get('objects');
    if (objects !== undefined && !/^\d+$/.test(objects)) {
      throw new ValidationError('ARG_INVALID', `secrets file section [${name}]: objects must be a whole number`);
    }
    for (const k of keys.keys()) {
      if (!IGNORED.has(k) && !['size', 'objects', 'block-size', 'block_size', 'description'].includes(k)) {
        throw new ValidationError('ARG_INVALID', `secrets file section [${name}]: unknown key ${JSON.stringify(k)}`);
      }
    }
    const size = keys.get('size');
    const blockSize = keys.get('block-size') ?? keys.get('block_size');
    const description = keys.get('description');
    return {
      name,
      ...(size === undefined ? {} : { size }),
      ...(objects === undefined ? {} : { objects: Number(objects) }),
      ...(blockSize === undefined ? {} : { blockSize }),
      ...(description === undefined ? {} : { description }),
    };
  });
}
