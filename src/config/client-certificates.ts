// Clients named by their TLS client certificate (`clients.NAME.certificate`): by the whole
// subject, as RFC 4514 writes it (most specific first: `CN=payments,O=Bank,C=HK`), or by a URI
// in the subject alternative names (a SPIFFE id). One spelling of a distinguished name for the
// config and the certificates alike (`distinguishedName`). Part of config validation.

export interface CertificateClient {
  name: string
  /** The subject in canonical form (distinguishedName), or null. */
  subject: string | null
  /** A URI subject alternative name, exactly, or null. */
  sanUri: string | null
}

type Problem = (path: Array<string | number>, message: string) => void

/** Attribute names as OpenSSL prints them short (what Node's X509Certificate.subject shows). */
const SHORT: Readonly<Record<string, string>> = {
  COMMONNAME: 'CN',
  ORGANIZATIONNAME: 'O',
  ORGANIZATIONALUNITNAME: 'OU',
  COUNTRYNAME: 'C',
  LOCALITYNAME: 'L',
  STATEORPROVINCENAME: 'ST',
  DOMAINCOMPONENT: 'DC',
  STREETADDRESS: 'STREET',
  USERID: 'UID',
  E: 'EMAILADDRESS',
}

/**
 * A distinguished name in one spelling, for comparison: RDNs in the order written (RFC 4514:
 * most specific first), attribute types upper case and short, values unescaped and escaped
 * again the same way, the attributes of a multi-valued RDN sorted. Values compare exactly
 * (case too). Null when the text is not a distinguished name.
 */
export function distinguishedName (text: string): string | null {
  const rdns: string[][] = [[]]
  let i = 0
  const s = text.trim()
  if (s === '') return null
  while (i < s.length) {
    const eq = s.indexOf('=', i)
    if (eq === -1) return null
    const rawType = s.slice(i, eq).trim().toUpperCase()
    if (!/^(?:[A-Z][A-Z0-9-]*|\d+(?:\.\d+)+)$/.test(rawType)) return null
    const type = SHORT[rawType] ?? rawType
    let value = ''
    let j = eq + 1
    while (j < s.length && s[j] === ' ') j++
    for (; j < s.length; j++) {
      const c = s[j] ?? ''
      if (c === '\\') {
        const hex = /^[0-9a-fA-F]{2}/.exec(s.slice(j + 1, j + 3))
        if (hex !== null) {
          value += String.fromCharCode(parseInt(hex[0], 16))
          j += 2
        } else {
          if (j + 1 >= s.length) return null
          value += s[j + 1]
          j++
        }
      } else if (c === ',' || c === '+' || c === ';') {
        break
      } else {
        value += c
      }
    }
    value = value.replace(/ +$/, '')
    if (value === '') return null
    rdns.at(-1)?.push(`${type}=${escapeValue(value)}`)
    const sep = s[j]
    i = j + 1
    if (sep === ',' || sep === ';') rdns.push([])
    else if (sep === undefined) break
    while (s[i] === ' ') i++
    if (i >= s.length && sep !== undefined) return null
  }
  return rdns.map((rdn) => rdn.sort().join('+')).join(',')
}

function escapeValue (value: string): string {
  return value.replace(/[\\,+"<>;=]/g, '\\$&').replace(/^[ #]/, '\\$&').replace(/ $/, '\\ ')
}

export function validateCertificateClient (name: string, raw: { subject?: string, san_uri?: string }, problem: Problem): CertificateClient | null {
  const at = ['clients', name, 'certificate']
  if ((raw.subject === undefined) === (raw.san_uri === undefined)) {
    problem(at, 'give one of subject (e.g. "CN=payments,O=Bank") and san_uri (e.g. spiffe://bank/ns/payments/sa/app)')
    return null
  }
  if (raw.subject !== undefined) {
    const subject = distinguishedName(raw.subject)
    if (subject === null) {
      problem([...at, 'subject'], `"${raw.subject}" is not a distinguished name (write it as RFC 4514 does, most specific first: "CN=payments,O=Bank,C=HK")`)
      return null
    }
    const types = subject.split(/(?<!\\),/).map((rdn) => rdn.split('=')[0])
    if (types.includes('CN') && types[0] !== 'CN' && !types[0]?.startsWith('UID')) {
      problem([...at, 'subject'], `"${raw.subject}" is written least specific first: RFC 4514 puts the most specific first ("CN=...,O=...,C=..."), the reverse of openssl's /C=../O=../CN=..`)
      return null
    }
    return { name, subject, sanUri: null }
  }
  const uri = raw.san_uri ?? ''
  if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(uri)) {
    problem([...at, 'san_uri'], `"${uri}" is not a URI (write e.g. spiffe://bank/ns/payments/sa/app)`)
    return null
  }
  return { name, subject: null, sanUri: uri }
}
