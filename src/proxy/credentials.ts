// Where a request carries a credential, said once: the headers in which a client sends a key
// (to a provider, or to the gateway as a client token), its cookies, and a proxy's own. The
// gateway strips, authenticates and redacts from these lists alone.

/** Headers in which a client sends a key, to a provider or to the gateway (a client token). */
export const KEY_HEADERS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key'] as const

/** Every credential a client sends: its keys and its cookies. Stripped where the gateway holds its own. */
export const CLIENT_CREDENTIAL_HEADERS: readonly string[] = [...KEY_HEADERS, 'cookie']

/** What never reaches a log: the client's credentials and a proxy's. */
export const SECRET_HEADERS: readonly string[] = [...CLIENT_CREDENTIAL_HEADERS, 'proxy-authorization']

/** A client's AWS Signature V4 headers: never sent on when the gateway signs (proxy/sigv4.ts). */
export const CLIENT_SIGNATURE_HEADERS = ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']

/** The key a request carries: `Authorization: Bearer`, else the first key header set, else null. */
export function requestKey (headers: Readonly<Record<string, string | string[] | undefined>>): string | null {
  const auth = headers['authorization']
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim() || null
  for (const name of KEY_HEADERS) {
    if (name === 'authorization') continue
    const value = headers[name]
    if (typeof value === 'string' && value !== '') return value
  }
  return null
}
