// A private certificate authority made in the test, with the openssl command line: a root, and
// certificates it signs for servers (localhost, 127.0.0.1, ::1) and clients (a subject and a
// SPIFFE URI). Files in a fresh directory; PEM text beside each path.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Pem {
  certFile: string
  keyFile: string
  cert: string
  key: string
}

export interface TestCa extends Pem {
  dir: string
  /** A certificate signed by this CA; `subject` in openssl's order, least specific first: /O=Bank/CN=payments. */
  issue: (name: string, opts: { subject: string, san?: string[], usage?: 'server' | 'client' | 'both' }) => Pem
}

function openssl (args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

export function makeCa (name = 'Test Root CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'geofence-pki-'))
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl(['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/O=Test/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  const pem = (base: string): Pem => ({
    certFile: join(dir, `${base}.pem`),
    keyFile: join(dir, `${base}.key`),
    cert: readFileSync(join(dir, `${base}.pem`), 'utf8'),
    key: readFileSync(join(dir, `${base}.key`), 'utf8'),
  })
  return {
    dir,
    ...pem('ca'),
    issue: (base, opts) => {
      const usage = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[opts.usage ?? 'server']
      writeFileSync(join(dir, `${base}.ext`), [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        `extendedKeyUsage=${usage}`,
        ...(opts.san === undefined ? [] : [`subjectAltName=${opts.san.join(',')}`]),
      ].join('\n'))
      openssl(['req', ...key, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', opts.subject], dir)
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(Date.now()),
        '-out', `${base}.pem`, '-days', '2', '-extfile', `${base}.ext`], dir)
      return pem(base)
    },
  }
}

/** A server certificate for every loopback name a test dials. */
export const LOOPBACK_SAN = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']
