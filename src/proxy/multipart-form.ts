// multipart/form-data read strictly, and written again in one canonical form. Parsers disagree
// on much of RFC 7578: a part with two Content-Disposition headers, `name*=` parameters,
// dispositions other than form-data, escapes in quoted names, Content-Transfer-Encoding, a
// repeated boundary parameter, header folding, text around the delimiters, how many parts
// count. Rather than guess which reading an upstream makes, the gateway reads a form only when
// it can read it in one way, refuses it otherwise (400), and forwards what it read re-encoded:
// one `Content-Disposition: form-data; name="..."` (with `filename="..."` for a file) per part,
// a Content-Type for each file, names that need no escape, no transfer encoding, and a fresh
// boundary. Every parser reads that form alike, so the upstream reads the fields the gateway read.
import { randomBytes } from 'node:crypto'
import { GatewayError } from '../errors.js'

/** More parts than any endpoint takes (images/edits: 16 images and a dozen fields); below every known parser's limit. */
export const MAX_PARTS = 100
/** The header block of one part. */
const MAX_PART_HEADERS = 8 * 1024

export interface FormPart {
  name: string
  /** Set for a file part (`filename=` present). */
  filename?: string
  /** A file's Content-Type (application/octet-stream when it had none); fields are sent without one. */
  contentType?: string
  data: Buffer
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const CRLF = Buffer.from('\r\n')

function refuse (why: string): never {
  throw new GatewayError('invalid_request', `the multipart body cannot be read in one way only: ${why}`)
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// RFC 2046 bchars, not ending in a space.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/
/** A field name: printable ASCII, no quote, backslash, or the separators naive parsers split on. */
const NAME = /^[\x20-\x7e]+$/
const NAME_REFUSED = /["\\;=]/
/** A file name: any text but a quote, a backslash or a control character. */
const FILENAME_REFUSED = /["\\\u0000-\u001f\u007f]/
/** What WHATWG parsers (undici's formData()) decode in names, and others do not: `"`, CR, LF escaped. */
const WHATWG_ESCAPE = /%(?:22|0d|0a)/i

/** `type; a=b; c="d"` as its type and parameters (names in lower case); each parameter once. */
function parameters (header: string, what: string): { value: string, params: Map<string, string> } {
  let i = header.indexOf(';')
  const value = (i === -1 ? header : header.slice(0, i)).trim()
  const params = new Map<string, string>()
  while (i !== -1 && i < header.length) {
    i++
    while (header[i] === ' ' || header[i] === '\t') i++
    const eq = header.indexOf('=', i)
    if (eq === -1) refuse(`a ${what} parameter without a value`)
    const name = header.slice(i, eq).trim().toLowerCase()
    if (!TOKEN.test(name)) refuse(`a ${what} parameter name that is not a token`)
    let v: string
    let j = eq + 1
    if (header[j] === '"') {
      const close = header.indexOf('"', j + 1)
      if (close === -1) refuse(`an unterminated quoted ${what} parameter`)
      v = header.slice(j + 1, close)
      if (v.includes('\\')) refuse(`a backslash in a quoted ${what} parameter (parsers disagree on escapes)`)
      j = close + 1
    } else {
      const end = header.indexOf(';', j)
      v = header.slice(j, end === -1 ? header.length : end).trim()
      if (!TOKEN.test(v)) refuse(`a ${what} parameter value that is neither a token nor quoted`)
      j = end === -1 ? header.length : end
    }
    while (header[j] === ' ' || header[j] === '\t') j++
    if (j < header.length && header[j] !== ';') refuse(`text after a ${what} parameter`)
    if (params.has(name)) refuse(`the ${what} parameter "${name}" is repeated`)
    params.set(name, v)
    i = j < header.length ? j : -1
  }
  return { value, params }
}

/** The boundary of a multipart/form-data Content-Type, or a 400. */
export function formBoundary (contentType: string | undefined): string {
  if (contentType === undefined) refuse('no Content-Type')
  const { value, params } = parameters(contentType, 'Content-Type')
  if (value.toLowerCase() !== 'multipart/form-data') refuse(`the Content-Type is ${value}, not multipart/form-data`)
  const boundary = params.get('boundary')
  if (boundary === undefined || !BOUNDARY.test(boundary)) refuse('the Content-Type has no valid boundary')
  return boundary
}

/**
 * The parts of a multipart/form-data body, read strictly (RFC 7578, RFC 2046 with CRLF line
 * ends): the body starts at its first delimiter and ends at its close delimiter (a final CRLF
 * aside), no delimiter line carries padding, and a delimiter string never appears in a part
 * unless it is one. Each part has one Content-Disposition `form-data` with a `name` (and a
 * `filename` for a file), at most one Content-Type, and no Content-Transfer-Encoding.
 */
export function parseForm (body: Buffer, contentType: string | undefined): FormPart[] {
  const boundary = formBoundary(contentType)
  const delimiter = Buffer.from(`--${boundary}`)
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`)
  if (!body.subarray(0, delimiter.length).equals(delimiter)) refuse('the body does not begin with its boundary')
  const parts: FormPart[] = []
  let at = delimiter.length
  for (;;) {
    // After a delimiter: "--" closes the body, CRLF opens a part; anything else is refused.
    const after = body.subarray(at, at + 2).toString('latin1')
    if (after === '--') {
      const rest = body.subarray(at + 2)
      if (rest.length > 0 && !rest.equals(CRLF)) refuse('text after the closing boundary')
      break
    }
    if (after !== '\r\n') refuse(at + 2 > body.length ? 'the body ends before its closing boundary' : 'a boundary followed by other text')
    if (parts.length === MAX_PARTS) refuse(`more than ${MAX_PARTS} parts`)
    // The part runs to the next CRLF + delimiter: neither its headers nor its data hold one.
    const start = at + 2
    const end = body.indexOf(nextDelimiter, start)
    if (end === -1) refuse('the body ends before its closing boundary')
    const bytes = body.subarray(start, end)
    const blank = bytes.indexOf('\r\n\r\n')
    if (bytes.subarray(0, 2).equals(CRLF) || blank === -1) refuse('a part without headers')
    if (blank > MAX_PART_HEADERS) refuse('a part with over 8 KiB of headers')
    parts.push(part(bytes.subarray(0, blank), bytes.subarray(blank + 4)))
    at = end + nextDelimiter.length
  }
  return parts
}

function part (headerBytes: Buffer, data: Buffer): FormPart {
  let text: string
  try {
    text = utf8.decode(headerBytes)
  } catch {
    refuse('part headers that are not UTF-8')
  }
  let disposition: string | undefined
  let type: string | undefined
  for (const line of text.split('\r\n')) {
    if (/[\r\n\0]/.test(line)) refuse('a bare CR, LF or NUL in part headers')
    if (line.startsWith(' ') || line.startsWith('\t')) refuse('a folded part header')
    const colon = line.indexOf(':')
    const name = colon === -1 ? '' : line.slice(0, colon).toLowerCase()
    if (!TOKEN.test(name)) refuse('a part header line that is not a header')
    const value = line.slice(colon + 1).trim()
    if (name === 'content-disposition') {
      if (disposition !== undefined) refuse('a part with two Content-Disposition headers')
      disposition = value
    } else if (name === 'content-type') {
      if (type !== undefined) refuse('a part with two Content-Type headers')
      type = value
    } else if (name === 'content-transfer-encoding') {
      refuse('a part with a Content-Transfer-Encoding')
    }
    // Any other part header is not part of a form (RFC 7578 4.8): it is not sent on.
  }
  if (disposition === undefined) refuse('a part without a Content-Disposition')
  const { value, params } = parameters(disposition, 'Content-Disposition')
  if (value.toLowerCase() !== 'form-data') refuse(`a part whose disposition is "${value}", not form-data`)
  if (params.has('name*')) refuse('a name*= parameter')
  const name = params.get('name')
  if (name === undefined || name === '') refuse('a part without a name')
  if (!NAME.test(name) || NAME_REFUSED.test(name)) refuse(`a part name with a character that is not printable ASCII or is one of " \\ ; =`)
  if (WHATWG_ESCAPE.test(name) || WHATWG_ESCAPE.test(params.get('filename') ?? '')) {
    refuse('a name or file name with %22, %0D or %0A, which some parsers decode and others do not')
  }
  const filename = params.get('filename')
  const star = params.get('filename*')
  if (star !== undefined && (filename === undefined || rfc5987(star) !== filename)) {
    refuse('a filename*= parameter that does not repeat the filename= beside it')
  }
  if (filename === undefined) return { name, data }
  if (FILENAME_REFUSED.test(filename)) refuse('a file name with a quote, a backslash or a control character')
  const contentType = type ?? 'application/octet-stream'
  if (!/^[!-~][ -~]*$/.test(contentType)) refuse('a part Content-Type that is not printable ASCII')
  return { name, filename, contentType, data }
}

/** An RFC 5987 `utf-8''percent-encoded` value, decoded; null when it is not one. */
function rfc5987 (value: string): string | null {
  const m = /^utf-8'[A-Za-z0-9-]*'((?:[!#$&+\-.^_`|~0-9A-Za-z]|%[0-9A-Fa-f]{2})*)$/i.exec(value)
  if (m === null) return null
  try {
    return decodeURIComponent(m[1] ?? '')
  } catch {
    return null
  }
}

/**
 * The parts in canonical form, under a fresh boundary that appears in none of them. The body
 * is built in one allocation beside the parts it copies (about twice the form in memory).
 */
export function encodeForm (parts: readonly FormPart[]): { body: Buffer, contentType: string } {
  let boundary: string
  do boundary = `geofence-${randomBytes(16).toString('hex')}`
  while (parts.some((p) => p.data.includes(boundary)))
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disposition = p.filename === undefined ? `form-data; name="${p.name}"` : `form-data; name="${p.name}"; filename="${p.filename}"`
    const type = p.contentType === undefined ? '' : `Content-Type: ${p.contentType}\r\n`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`, 'utf8'), p.data, CRLF)
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` }
}
