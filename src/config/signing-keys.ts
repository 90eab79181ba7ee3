// The keys a config names for evidence: the private key that signs the decision log's
// checkpoints (logging.integrity.key) and the public keys a signed policy must verify with
// (policy_signature.public_keys). Ed25519, and ECDSA over P-256 with SHA-256; PEM (PKCS#8 for
// private keys, SPKI for public ones), read from `file:PATH` or given inline (from ${ENV}).
// node:crypto does the cryptography.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'

export type SigningAlgorithm = 'ed25519' | 'ecdsa-p256'

export interface SigningKey {
  /** The private key (for signing) or the public key (for verifying). */
  key: KeyObject
  /** The public key's id: the first 16 hex digits of the sha256 of its SPKI DER encoding. */
  id: string
  algorithm: SigningAlgorithm
}

/** `file:PATH` read, or PEM text as given; why not, as a problem. */
function pemText (value: string): string | { problem: string } {
  if (!value.startsWith('file:')) return value
  try {
    return readFileSync(value.slice(5), 'utf8')
  } catch (err) {
    return { problem: `cannot read ${value.slice(5)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }
  }
}

export function algorithmOf (key: KeyObject): SigningAlgorithm | null {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  return null
}

/** The id a key is named by in signatures and logs (of the public half). */
export function keyId (key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)
}

const WHICH = 'an Ed25519 or ECDSA P-256 key in PEM'

function named (key: KeyObject, what: string): SigningKey | { problem: string } {
  const algorithm = algorithmOf(key)
  if (algorithm === null) {
    const kind = key.asymmetricKeyType === 'ec' ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'another curve'}` : `a ${key.asymmetricKeyType ?? 'symmetric'} key`
    return { problem: `${what} is ${kind}; use ${WHICH} (openssl genpkey -algorithm ed25519)` }
  }
  return { key, id: keyId(key), algorithm }
}

/** A private signing key from `file:PATH` or PEM text. */
export function readPrivateKey (value: string): SigningKey | { problem: string } {
  const text = pemText(value)
  if (typeof text !== 'string') return text
  try {
    return named(createPrivateKey(text), 'the key')
  } catch (err) {
    return { problem: `not a private key (${WHICH}, PKCS#8): ${(err as Error).message}` }
  }
}

/** A public key from `file:PATH` or PEM text (a private key's public half is refused: keep it off the verifier). */
export function readPublicKey (value: string): SigningKey | { problem: string } {
  const text = pemText(value)
  if (typeof text !== 'string') return text
  if (text.includes('PRIVATE KEY')) return { problem: 'this is a private key; give the public key (openssl pkey -pubout)' }
  try {
    return named(createPublicKey(text), 'the key')
  } catch (err) {
    return { problem: `not a public key (${WHICH}, SPKI): ${(err as Error).message}` }
  }
}

export function signBytes (key: SigningKey, data: string | Buffer): Buffer {
  return sign(key.algorithm === 'ed25519' ? null : 'sha256', typeof data === 'string' ? Buffer.from(data) : data, key.key)
}

export function verifyBytes (key: SigningKey, data: string | Buffer, signature: Buffer): boolean {
  try {
    return verify(key.algorithm === 'ed25519' ? null : 'sha256', typeof data === 'string' ? Buffer.from(data) : data, key.key, signature)
  } catch {
    return false
  }
}
