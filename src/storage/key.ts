import { StoreError } from '../core/errors.js';

const KEY_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
/** Object store keys are at most this long (S3 allows 1024 bytes, Swift 1024). */
export const KEY_MAX = 1024;

/**
 * Checks a key against the store's key grammar. Keys are built by our own code, never
 * taken from the network, but a wrong one must not escape a directory on fs.
 */
export function checkKey(key: string): string {
  if (key.length === 0 || key.length > KEY_MAX || !KEY_RE.test(key)) {
    throw new StoreError('STORE_BAD_KEY', `invalid object store key ${JSON.stringify(key.slice(0, 80))}`);
  }
  for (const part of key.split('/')) {
    if (part === '.' || part === '..') {
      throw new StoreError('STORE_BAD_KEY', `invalid object store key ${JSON.stringify(key.slice(0, 80))}`);
    }
  }
  return key;
}

/** Checks a listing prefix: empty, or a key prefix (may end with `/`). */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}
