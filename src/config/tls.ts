// TLS material named in the config (`file:PATH` for certificates, keys and CA bundles), read
// and checked when a revision is built, so that a reload reads it again and a broken file
// leaves the running revision in force: an upstream's `tls:` (the gateway as a TLS client) and
// `server.tls` (the gateway's own listener). Part of config validation; problems are reported.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { RawServerTls, RawTls } from './schema.js'

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3'

/** An upstream's TLS as the gateway connects with it: PEM text, read for this revision. */
export interface UpstreamTls {
  /** Replaces the system's CAs for this upstream. */
  ca: string | null
  /** A client certificate and its key (mutual TLS to the upstream). */
  cert: string | null
  key: string | null
  /** The name sent in SNI and checked against the certificate, instead of the URL's host. */
  servername: string | null
  minVersion: TlsVersion | null
  /** The files read, absolute (watched for reload). */
  files: readonly string[]
}

type Problem = (path: Array<string | number>, message: string) => void

/** A PEM file as read, with where it came from. */
export interface PemFile {
  file: string
  text: string
}

/** `file:PATH` -> the file's text, checked to hold certificates (a bundle) or one private key. */
export function readPem (value: string, kind: 'certificates' | 'key', path: Array<string | number>, problem: Problem): PemFile | null {
  if (!value.startsWith('file:') || value.length === 5) {
    problem(path, `write the file as file:PATH (e.g. file:/etc/llm-geofence/${kind === 'key' ? 'tls.key' : 'ca.pem'})`)
    return null
  }
  const file = resolve(value.slice(5))
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    problem(path, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return null
  }
  if (kind === 'key') {
    if (keyOf(text) === null) {
      problem(path, `${file} holds no private key in PEM (-----BEGIN PRIVATE KEY-----, unencrypted)`)
      return null
    }
  } else if (certificatesOf(text).length === 0) {
    problem(path, `${file} holds no certificate in PEM (-----BEGIN CERTIFICATE-----)`)
    return null
  }
  return { file, text }
}

/** Every certificate of a PEM bundle that parses. */
export function certificatesOf (text: string): X509Certificate[] {
  const out: X509Certificate[] = []
  for (const block of text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    try {
      out.push(new X509Certificate(block))
    } catch { /* a block that does not parse is no certificate */ }
  }
  return out
}

function keyOf (text: string): KeyObject | null {
  try {
    return createPrivateKey(text)
  } catch {
    return null
  }
}

/**
 * A certificate and its key, given together, the key the certificate's: else the first TLS
 * handshake would be where it failed. `at` is the section (`upstreams.NAME.tls`, `server.tls`).
 */
export function certificatePair (cert: PemFile | null, key: PemFile | null, at: Array<string | number>, given: { cert: boolean, key: boolean }, problem: Problem): boolean {
  if (given.cert !== given.key) {
    problem([...at, given.cert ? 'key' : 'cert'], 'a certificate and its private key go together: give cert and key')
    return false
  }
  if (cert === null || key === null) return false
  const leaf = certificatesOf(cert.text)[0]
  const pk = keyOf(key.text)
  if (leaf === undefined || pk === null || !leaf.checkPrivateKey(pk)) {
    problem([...at, 'key'], `${key.file} is not the private key of the certificate in ${cert.file}`)
    return false
  }
  return true
}

export function validateUpstreamTls (raw: RawTls, url: string, at: Array<string | number>, problem: Problem): UpstreamTls | null {
  if (!url.startsWith('https:')) {
    problem(at, 'tls applies to an https:// upstream')
    return null
  }
  const ca = raw.ca === undefined ? null : readPem(raw.ca, 'certificates', [...at, 'ca'], problem)
  const cert = raw.cert === undefined ? null : readPem(raw.cert, 'certificates', [...at, 'cert'], problem)
  const key = raw.key === undefined ? null : readPem(raw.key, 'key', [...at, 'key'], problem)
  certificatePair(cert, key, at, { cert: raw.cert !== undefined, key: raw.key !== undefined }, problem)
  if (raw.servername !== undefined && !/^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$/i.test(raw.servername)) {
    problem([...at, 'servername'], `"${raw.servername}" is not a host name`)
  }
  return {
    ca: ca?.text ?? null,
    cert: cert?.text ?? null,
    key: key?.text ?? null,
    servername: raw.servername ?? null,
    minVersion: raw.min_version ?? null,
    files: [ca, cert, key].flatMap((f) => (f === null ? [] : [f.file])),
  }
}

/** Whether the listener asks for a client certificate: not at all, if the client has one, or always. */
export type ClientCertificateMode = 'none' | 'request' | 'require'

/** The gateway's own listener over TLS (server.tls): PEM text, read for this revision. */
export interface ServerTls {
  cert: string
  key: string
  /** The CAs client certificates are verified against. */
  clientCa: string | null
  clientCertificate: ClientCertificateMode
  files: readonly string[]
}

export function validateServerTls (raw: RawServerTls, problem: Problem): ServerTls | null {
  const at = ['server', 'tls']
  const cert = readPem(raw.cert, 'certificates', [...at, 'cert'], problem)
  const key = readPem(raw.key, 'key', [...at, 'key'], problem)
  const paired = certificatePair(cert, key, at, { cert: true, key: true }, problem)
  const clientCa = raw.client_ca === undefined ? null : readPem(raw.client_ca, 'certificates', [...at, 'client_ca'], problem)
  const mode = raw.client_certificate ?? 'none'
  if (mode !== 'none' && raw.client_ca === undefined) problem([...at, 'client_certificate'], `${mode} needs client_ca: the CAs client certificates are verified against`)
  if (mode === 'none' && raw.client_ca !== undefined) problem([...at, 'client_ca'], 'no client certificate is asked for: write client_certificate: request (or require)')
  if (!paired || cert === null || key === null) return null
  return { cert: cert.text, key: key.text, clientCa: clientCa?.text ?? null, clientCertificate: mode, files: [cert, key, clientCa].flatMap((f) => (f === null ? [] : [f.file])) }
}
