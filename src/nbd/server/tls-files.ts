/**
 * The NBD server's TLS settings from configuration (`nbd.tls`, `nbd.tlsCert`, `nbd.tlsKey`,
 * `nbd.tlsCa`): PEM files read once at start-up. With `tlsCa`, clients must present a
 * certificate that chains to it (as nbdkit's --tls-verify-peer); without it, any client that
 * completes the TLS handshake is served.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ValidationError } from '../../core/errors.js';
import type { NbdTlsOptions } from './server.js';

/** The `nbd` keys this reads (a slice of StowageConfig['nbd']). */
export interface NbdTlsConfig {
  readonly tls: 'off' | 'on' | 'require';
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsCa?: string | undefined;
}

function readPem(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ValidationError('CONFIG_INVALID', `config key nbd.${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** TLS options for NbdServer, or undefined when `nbd.tls` is off; CONFIG_INVALID on missing or unusable files. */
export function nbdTlsFromConfig(nbd: NbdTlsConfig): NbdTlsOptions | undefined {
  if (nbd.tls === 'off') return undefined;
  if (nbd.tlsCert === undefined || nbd.tlsKey === undefined) {
    throw new ValidationError('CONFIG_INVALID', `nbd.tls = ${nbd.tls} needs nbd.tlsCert and nbd.tlsKey (PEM files of the server certificate and its key)`);
  }
  const cert = readPem('tlsCert', nbd.tlsCert);
  const key = readPem('tlsKey', nbd.tlsKey);
  const ca = nbd.tlsCa === undefined ? undefined : readPem('tlsCa', nbd.tlsCa);
  try {
    // Fail at start-up, not at the first client: a key that does not match, a file that is not PEM.
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (err) {
    throw new ValidationError('CONFIG_INVALID', `nbd.tlsCert / nbd.tlsKey / nbd.tlsCa are not a usable certificate, key and CA: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key, ...(ca === undefined ? {} : { ca, requireClientCert: true }), mode: nbd.tls };
}
