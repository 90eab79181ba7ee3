// Signed policies (policy_signature): the config file must come with a detached signature,
// FILE.sig, made by `geofence sign --key KEY FILE`, over its bytes and the bytes of every file
// it names that decides whom to trust (an identity issuer's jwks_file, TLS CA files). Not over
// secrets (they change on their own schedule, and a signer should not need them) nor GeoIP
// databases (updated weekly by geoipupdate; their build dates are in the metrics).
//
// What is signed is a manifest, one line each: a header, the config's sha256, then each trust
// file's path as written and its sha256, in the order the config names them. The trust files
// are found in the YAML as written (before ${ENV} substitution), so signer and gateway agree
// whatever their environments.
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseDocument } from 'yaml'
import { signBytes, verifyBytes, type SigningAlgorithm, type SigningKey } from './signing-keys.js'

export const SIGNATURE_FORMAT = 'llm-geofence policy signature 1'
/** Keys whose value is a file that decides whom to trust, wherever they appear. */
export const TRUST_FILE_KEYS: ReadonlySet<string> = new Set(['jwks_file', 'ca', 'client_ca', 'ca_file', 'client_ca_file'])

export interface TrustFile {
  /** As the config writes it. */
  path: string
  sha256: string
}

export interface Manifest {
  config_sha256: string
  files: TrustFile[]
}

/** FILE.sig. */
export interface SignatureFile extends Manifest {
  format: typeof SIGNATURE_FORMAT
  key: string
  algorithm: SigningAlgorithm
  signature: string
}

export function signatureFileOf (configFile: string): string {
  return `${configFile}.sig`
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** The trust files a config names, as written; a problem when one cannot be signed for. */
export function trustFilePaths (bytes: Buffer): string[] | { problem: string } {
  const doc = parseDocument(bytes.toString('utf8'), { uniqueKeys: false })
  const out: string[] = []
  let problem: string | null = null
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item)
      return
    }
    if (node === null || typeof node !== 'object') return
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (TRUST_FILE_KEYS.has(key)) {
        for (const v of [value].flat()) {
          if (typeof v !== 'string' || v.includes('-----BEGIN')) continue // inline: the config's bytes cover it
          if (v.includes('${')) problem ??= `${key}: "${v}" names an environment variable: write a trust file's path literally, so that the signature covers the file it names`
          out.push(v.startsWith('file:') ? v.slice(5) : v)
        }
      } else {
        visit(value)
      }
    }
  }
  visit(doc.toJS())
  return problem === null ? out : { problem }
}

/** The config's and its trust files' hashes, read now. */
export async function policyManifest (bytes: Buffer): Promise<Manifest | { problem: string }> {
  const paths = trustFilePaths(bytes)
  if ('problem' in paths) return paths
  const files: TrustFile[] = []
  for (const path of paths) {
    try {
      files.push({ path, sha256: sha256(await readFile(resolve(path))) })
    } catch (err) {
      return { problem: `cannot read ${path}, which the config names: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }
    }
  }
  return { config_sha256: sha256(bytes), files }
}

/** The bytes a policy signature covers. */
export function manifestText (m: Manifest): string {
  return [SIGNATURE_FORMAT, `config ${m.config_sha256}`, ...m.files.map((f) => `file ${JSON.stringify(f.path)} ${f.sha256}`), ''].join('\n')
}

/** `geofence sign`: FILE.sig for the config file as it is now. */
export async function signPolicy (configFile: string, key: SigningKey): Promise<{ sigFile: string, signature: SignatureFile } | { problem: string }> {
  const manifest = await policyManifest(await readFile(configFile))
  if ('problem' in manifest) return manifest
  const signature: SignatureFile = {
    format: SIGNATURE_FORMAT,
    key: key.id,
    algorithm: key.algorithm,
    ...manifest,
    signature: signBytes(key, manifestText(manifest)).toString('base64'),
  }
  const sigFile = signatureFileOf(configFile)
  await writeFile(sigFile, `${JSON.stringify(signature, null, 2)}\n`)
  return { sigFile, signature }
}

/**
 * Whether `manifest` (the config's bytes as read, its trust files) is what FILE.sig signs, with
 * one of `keys`: the signing key's id, or why not, in words that say what to do.
 */
export async function verifyPolicy (configFile: string, manifest: Manifest | { problem: string }, keys: readonly SigningKey[]): Promise<{ key: string } | { problem: string }> {
  const sigFile = signatureFileOf(configFile)
  let text: string
  try {
    text = await readFile(sigFile, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { problem: code === 'ENOENT'
      ? `the config is not signed: policy_signature requires ${sigFile} (geofence sign --key KEY ${configFile})`
      : `${sigFile} is not a policy signature: ${code ?? (err as Error).message}` }
  }
  return verifySignature(text, sigFile, manifest, keys)
}

/** Whether `text` (a FILE.sig, from `sigName`) signs `manifest` with one of `keys`. */
export function verifySignature (text: string, sigName: string, manifest: Manifest | { problem: string }, keys: readonly SigningKey[]): { key: string } | { problem: string } {
  const known = keys.map((k) => k.id).join(', ')
  let sig: Partial<SignatureFile>
  try {
    sig = JSON.parse(text) as Partial<SignatureFile>
  } catch (err) {
    return { problem: `${sigName} is not a policy signature: ${(err as Error).message}` }
  }
  if (sig === null || typeof sig !== 'object' || sig.format !== SIGNATURE_FORMAT || typeof sig.signature !== 'string' || typeof sig.key !== 'string') {
    return { problem: `${sigName} is not a policy signature (${SIGNATURE_FORMAT})` }
  }
  const key = keys.find((k) => k.id === sig.key)
  if (key === undefined) return { problem: `${sigName} is signed by key ${sig.key}, which is not one of policy_signature.public_keys (${known})` }
  if ('problem' in manifest) return manifest
  if (verifyBytes(key, manifestText(manifest), Buffer.from(sig.signature, 'base64'))) return { key: key.id }
  return { problem: `${sigName} does not verify with key ${key.id}: ${whatChanged(manifest, sig)}` }
}

/** Why a signature over `signed` does not cover `now`, as far as the signature file tells. */
function whatChanged (now: Manifest, signed: Partial<SignatureFile>): string {
  if (signed.config_sha256 !== now.config_sha256) return 'the config changed after it was signed (sign it again)'
  const before = new Map((signed.files ?? []).map((f) => [f.path, f.sha256]))
  for (const f of now.files) {
    const was = before.get(f.path)
    if (was === undefined) return `the signature does not cover ${f.path}, which the config names`
    if (was !== f.sha256) return `${f.path} changed after the config was signed (sha256 ${was.slice(0, 12)}… when signed, ${f.sha256.slice(0, 12)}… now)`
  }
  return 'the signature is not one that key made over these files (forged, or altered)'
}

/** The same contents as when the signature was checked (a file swapped meanwhile is refused). */
export function sameManifest (a: Manifest, b: Manifest | { problem: string }): boolean {
  return !('problem' in b) && manifestText(a) === manifestText(b)
}

/** A policy fetched from policy_source (its bytes and URL.sig): whether one of `keys` signed it and the trust files it names as this gateway holds them. */
export async function verifyFetchedPolicy (fetched: { url: string, bytes: Buffer, signature: Buffer }, keys: readonly SigningKey[]): Promise<{ key: string, manifest: Manifest } | { problem: string }> {
  const manifest = await policyManifest(fetched.bytes)
  const verified = verifySignature(fetched.signature.toString('utf8'), `${fetched.url}.sig`, manifest, keys)
  if ('problem' in verified) return verified
  if ('problem' in manifest) return manifest
  return { key: verified.key, manifest }
}
