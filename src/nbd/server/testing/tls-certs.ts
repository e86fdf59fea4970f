/**
 * Test support (not a test): X.509 material made with the `openssl` command in a temp dir: a
 * CA, a server certificate for 127.0.0.1/localhost and a client certificate signed by it, and
 * client certificate folders laid out as libnbd's `tls-certificates=DIR` expects (ca-cert.pem,
 * client-cert.pem, client-key.pem): one trusting our CA, one trusting another CA only, and one
 * without a client certificate.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Paths of the generated files. */
export interface TlsFiles {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Trusts our CA and holds a client certificate signed by it. */
  readonly clientDir: string;
  /** Holds the same client certificate but trusts only an unrelated CA. */
  readonly untrustingDir: string;
  /** Trusts our CA, has no client certificate. */
  readonly noCertDir: string;
}

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', [...args], { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err !== null) reject(new Error(`openssl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A self-signed CA as cert and key in `dir`. */
async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  await openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { cert, key };
}

/** A leaf certificate signed by `ca` with the given extensions. */
async function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, ext: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, `${ext}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n`);
  await openssl(['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', extFile], dir);
  return { cert, key };
}

/** Generates everything under `dir` (which must exist). */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  const ca = await makeCa(dir, 'ca');
  const other = await makeCa(dir, 'other-ca');
  const server = await makeLeaf(dir, 'server', ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  const client = await makeLeaf(dir, 'client', ca, 'extendedKeyUsage=clientAuth');
  const clientDir = join(dir, 'client');
  const untrustingDir = join(dir, 'untrusting');
  const noCertDir = join(dir, 'no-cert');
  for (const [d, trust, withCert] of [[clientDir, ca.cert, true], [untrustingDir, other.cert, true], [noCertDir, ca.cert, false]] as const) {
    await mkdir(d);
    await copyFile(trust, join(d, 'ca-cert.pem'));
    if (withCert) {
      await copyFile(client.cert, join(d, 'client-cert.pem'));
      await copyFile(client.key, join(d, 'client-key.pem'));
    }
  }
  return { caCert: ca.cert, serverCert: server.cert, serverKey: server.key, clientDir, untrustingDir, noCertDir };
}
