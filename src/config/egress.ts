// The egress section: which forward proxy the gateway's own connections go through (to the
// upstreams, their WebSockets, and the identity providers' keys), and which hosts go direct.
// Without `egress.proxy` the environment decides, read as curl reads it. Part of config
// validation (config/validate.ts); problems are reported, not thrown.
import { readFileSync } from 'node:fs'
import { parseCidr } from '../geo/address.js'
import type { RawConfig } from './schema.js'

/** curl's default proxy port when the URL names none (1080), and HTTPS's for an https:// proxy. */
const DEFAULT_PROXY_PORT: Readonly<Record<string, number>> = { 'http:': 1080, 'https:': 443 }

/** A forward proxy the gateway opens CONNECT tunnels through. */
export interface ProxyConfig {
  protocol: 'http:' | 'https:'
  hostname: string
  port: number
  /** The Proxy-Authorization value (Basic), or null. Never logged, never in a message. */
  authorization: string | null
  /** Where it was configured (`egress.proxy`, `HTTPS_PROXY`, ...), for messages and logs. */
  from: string
  /** scheme://host:port, without credentials: the only form that is ever shown. */
  label: string
}

/** Hosts reached without the proxy: curl's NO_PROXY, with CIDRs. */
export interface NoProxyList {
  /** `*`: nothing goes through the proxy. */
  all: boolean
  /** Lower case, no leading dot; each matches itself and every name below it, on `port` if given. */
  names: ReadonlyArray<{ name: string, port: number | null }>
  /** Match upstreams written as addresses (names are never resolved to be matched). */
  cidrs: ReadonlyArray<readonly [string, number]>
}

export interface EgressConfig {
  /** The proxy for https:// (and wss://) origins, or null: direct. */
  https: ProxyConfig | null
  /** The proxy for http:// (and ws://) origins, or null: direct. */
  http: ProxyConfig | null
  noProxy: NoProxyList
  /** `config` (egress.proxy), `environment`, or `none`. */
  source: 'config' | 'environment' | 'none'
}

export const NO_EGRESS_PROXY: EgressConfig = { https: null, http: null, noProxy: { all: false, names: [], cidrs: [] }, source: 'none' }

type Problem = (path: Array<string | number>, message: string) => void

/**
 * `egress.proxy` (a URL, or `none`) for every origin; else the environment as curl reads it:
 * `https_proxy`/`HTTPS_PROXY` for https, `http_proxy` (lower case only: curl ignores
 * `HTTP_PROXY`, which a CGI request could set) for http, `all_proxy`/`ALL_PROXY` for both,
 * `no_proxy`/`NO_PROXY` for the exceptions, lower case first. `egress.no_proxy` replaces NO_PROXY.
 */
export function validateEgress (raw: RawConfig['egress'], env: NodeJS.ProcessEnv, problem: Problem): EgressConfig {
  const given = raw?.no_proxy
  const noProxy = noProxyList(given ?? [], (i, message) => { problem(['egress', 'no_proxy', i], message) })
  if (raw?.proxy === 'none') {
    if (raw.proxy_auth !== undefined) problem(['egress', 'proxy_auth'], 'there is no proxy to authenticate to (egress.proxy is none)')
    return { ...NO_EGRESS_PROXY, noProxy }
  }
  if (raw?.proxy !== undefined) {
    const proxy = proxyUrl(raw.proxy, 'egress.proxy', (message) => { problem(['egress', 'proxy'], message) })
    if (proxy !== null && raw.proxy_auth !== undefined) {
      if (proxy.authorization !== null) problem(['egress', 'proxy_auth'], 'the credentials are in egress.proxy already: give them once')
      else proxy.authorization = basicAuth(raw.proxy_auth, (message) => { problem(['egress', 'proxy_auth'], message) })
    }
    return { https: proxy, http: proxy, noProxy, source: proxy === null ? 'none' : 'config' }
  }
  const fromEnv = (names: readonly string[]): ProxyConfig | null => {
    const name = names.find((n) => (env[n] ?? '') !== '')
    if (name === undefined) return null
    return proxyUrl(env[name] ?? '', name, (message) => { problem(['egress'], `${name} (from the environment): ${message}`) })
  }
  const https = fromEnv(['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'])
  const http = fromEnv(['http_proxy', 'all_proxy', 'ALL_PROXY'])
  if (raw?.proxy_auth !== undefined) {
    if (https === null && http === null) problem(['egress', 'proxy_auth'], 'no proxy is configured (egress.proxy) or set in the environment (HTTPS_PROXY)')
    const authorization = basicAuth(raw.proxy_auth, (message) => { problem(['egress', 'proxy_auth'], message) })
    for (const p of [https, http]) if (p !== null && p.authorization === null) p.authorization = authorization
  }
  const envNoProxy = env['no_proxy'] ?? env['NO_PROXY']
  return {
    https,
    http,
    // NO_PROXY is the environment's: an entry that is not understood matches nothing (more goes through the proxy, never less).
    noProxy: given !== undefined || envNoProxy === undefined ? noProxy : noProxyList(envNoProxy.split(/[\s,]+/), () => {}),
    source: https === null && http === null ? 'none' : 'environment',
  }
}

/** `http://[user:password@]host[:port]`, or `https://...`; no scheme means http://, as in curl. */
function proxyUrl (text: string, from: string, problem: (message: string) => void): ProxyConfig | null {
  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`)
  } catch {
    // The text may hold a password: it is not repeated.
    problem('is not a URL (write e.g. http://proxy.bank.internal:3128)')
    return null
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problem(`a ${url.protocol.replace(/:$/, '')} proxy is not supported: the gateway tunnels through HTTP proxies with CONNECT (http:// or https://)`)
    return null
  }
  if (url.hostname === '') {
    problem('names no host')
    return null
  }
  let authorization: string | null = null
  if (url.username !== '' || url.password !== '') {
    const user = percentDecoded(url.username)
    const password = percentDecoded(url.password)
    if (user === null || password === null) {
      problem('its credentials hold %00, which curl refuses too')
      return null
    }
    authorization = `Basic ${Buffer.concat([user, Buffer.from(':'), password]).toString('base64')}`
  }
  const port = url.port === '' ? DEFAULT_PROXY_PORT[url.protocol] ?? 1080 : Number(url.port)
  const hostname = url.hostname.replace(/^\[|\]$/g, '')
  return { protocol: url.protocol, hostname, port, authorization, from, label: `${url.protocol}//${url.host.replace(/:\d+$/, '')}:${port}` }
}

/**
 * The bytes a URL's user or password stands for, as curl decodes a proxy URL's: each `%XX` is
 * the byte XX (whatever the bytes spell: `%E9` is one byte, not UTF-8), a `%` not followed by two
 * hex digits is itself, and nothing else changes (`+` stays `+`). Null for `%00`, which curl
 * refuses. undici's ProxyAgent would throw on `%E9` and on a stray `%`.
 */
function percentDecoded (text: string): Buffer | null {
  const bytes: number[] = []
  const raw = Buffer.from(text, 'utf8')
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x25 ? /^[0-9a-f]{2}$/i.exec(raw.subarray(i + 1, i + 3).toString('latin1')) : null
    if (hex === null) {
      bytes.push(raw[i] ?? 0)
      continue
    }
    const byte = parseInt(hex[0], 16)
    if (byte === 0) return null
    bytes.push(byte)
    i += 2
  }
  return Buffer.from(bytes)
}

/** `user:password`, as written or read from `file:PATH`, never percent-decoded (as curl's --proxy-user): the Basic Proxy-Authorization value. */
function basicAuth (value: string, problem: (message: string) => void): string | null {
  let text = value
  if (value.startsWith('file:')) {
    try {
      text = readFileSync(value.slice(5), 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      problem(`cannot read ${value.slice(5)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      return null
    }
  }
  if (!text.includes(':') || /[\r\n\0]/.test(text)) {
    problem('must be user:password (written, "${ENV}" or "file:PATH"), on one line')
    return null
  }
  return `Basic ${Buffer.from(text).toString('base64')}`
}

/**
 * NO_PROXY entries as curl reads them: `*` alone (everything goes direct), a host name (itself
 * and every name below it; a leading `.` or `*.` is dropped), an address or a CIDR (IPv6
 * without brackets), and, as undici and Go also read it, `name:port`.
 */
export function noProxyList (entries: readonly string[], problem: (i: number, message: string) => void): NoProxyList {
  let all = false
  const names: Array<{ name: string, port: number | null }> = []
  const cidrs: Array<readonly [string, number]> = []
  for (const [i, raw] of entries.entries()) {
    const entry = raw.trim()
    if (entry === '') continue
    if (entry === '*') {
      all = true
      continue
    }
    const cidr = parseCidr(entry.replace(/^\[([^\]]+)\](?=\/|$)/, '$1'))
    if (cidr !== null) {
      cidrs.push(cidr)
      continue
    }
    const m = /^(?:\*?\.)?([a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)\.?(?::(\d{1,5}))?$/i.exec(entry)
    if (m === null) {
      problem(i, `"${entry}" is not a host name, a .domain suffix, an address or a CIDR (write e.g. .bank.internal, llm.bank.internal, 10.0.0.0/8)`)
      continue
    }
    names.push({ name: (m[1] ?? '').toLowerCase(), port: m[2] === undefined ? null : Number(m[2]) })
  }
  return { all, names, cidrs }
}
