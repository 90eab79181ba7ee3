// How the gateway opens a connection to the outside: directly, or through the egress proxy
// with an HTTP CONNECT tunnel, then TLS to the host (verified; the tunnel carries only
// ciphertext). One connector for every outbound connection: undici's pools use it
// (proxy/dispatcher.ts) and so does the WebSocket to an upstream (transport/websocket.ts).
// A proxy that cannot be reached or refuses the tunnel fails with an EgressProxyError, which
// proxy/upstream-error.ts answers as a 502 that says so.
import http from 'node:http'
import https from 'node:https'
import { isIP, type Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { buildConnector } from 'undici'
import type { EgressConfig, ProxyConfig } from '../config/egress.js'
import { AddressSet, canonicalAddress } from '../geo/address.js'

/** Where a connection goes, as undici's pools ask for one. */
export interface ConnectTarget {
  protocol: string
  hostname: string
  port: number | string
  servername?: string | null
}

export type ConnectCallback = (err: Error | null, socket: Socket | null) => void
export type Connector = (target: ConnectTarget, callback: ConnectCallback) => void

/** The egress proxy could not be reached, did not answer in time, or refused the tunnel. */
export class EgressProxyError extends Error {
  readonly code = 'GEOFENCE_EGRESS_PROXY'
  readonly reason: 'unreachable' | 'timeout' | 'refused'
  /** The proxy's answer to CONNECT, when it refused. */
  readonly status: number | null
  constructor (reason: EgressProxyError['reason'], message: string, options?: { cause?: unknown, status?: number }) {
    super(message, options)
    this.name = 'EgressProxyError'
    this.reason = reason
    this.status = options?.status ?? null
  }
}

/** The proxy a connection to `target` goes through, or null for a direct one (no_proxy, or none configured). */
export function proxyFor (egress: EgressConfig, target: { protocol: string, hostname: string, port: number }): ProxyConfig | null {
  const proxy = target.protocol === 'https:' || target.protocol === 'wss:' ? egress.https : egress.http
  if (proxy === null || bypasses(egress, target.hostname, target.port)) return null
  return proxy
}

const cidrSets = new WeakMap<EgressConfig['noProxy'], AddressSet>()

/** True when no_proxy sends `hostname` direct: a name or one of its parent domains, or an address in a CIDR. */
function bypasses (egress: EgressConfig, hostname: string, port: number): boolean {
  const { noProxy } = egress
  if (noProxy.all) return true
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase()
  if (isIP(host) !== 0) {
    const addr = canonicalAddress(host)
    if (addr === null || noProxy.cidrs.length === 0) return false
    let set = cidrSets.get(noProxy)
    if (set === undefined) {
      set = new AddressSet(noProxy.cidrs)
      cidrSets.set(noProxy, set)
    }
    return set.has(addr)
  }
  return noProxy.names.some((e) => (e.port === null || e.port === port) && (host === e.name || host.endsWith(`.${e.name}`)))
}

export interface ConnectorOptions {
  egress: EgressConfig
  /** True: always direct (an upstream's `proxy: none`). */
  direct: boolean
  /** TLS towards the host itself (CAs, client certificate, servername, minimum version). */
  tls: ConnectionOptions
  /** Each step (reaching the proxy and its answer to CONNECT; TCP and TLS to the host) in this time. */
  connectMs: number
}

const DEFAULT_PORT: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 }

/** Connections to a host as `opts` say: direct, or tunnelled through the egress proxy. */
export function egressConnector (opts: ConnectorOptions): Connector {
  // undici's own connector: TCP or TLS with its session cache and connect timeout, over a tunnel too.
  const endpoint = buildConnector({ ...opts.tls, timeout: opts.connectMs } as buildConnector.BuildOptions)
  return (target, callback) => {
    const secure = target.protocol === 'https:' || target.protocol === 'wss:'
    const protocol = secure ? 'https:' : 'http:'
    const port = Number(target.port) || (DEFAULT_PORT[target.protocol] ?? 443)
    const hostname = target.hostname.replace(/^\[|\]$/g, '')
    // A configured servername wins over the one undici derives from the Host header.
    const servername = opts.tls.servername ?? target.servername ?? undefined
    const proxy = opts.direct ? null : proxyFor(opts.egress, { protocol, hostname, port })
    const connectEndpoint = (httpSocket?: Socket): void => {
      endpoint({ protocol, hostname, host: hostname, port: String(port), ...(servername == null ? {} : { servername }), ...(httpSocket === undefined ? {} : { httpSocket }) }, (err, socket) => {
        if (err !== null) {
          httpSocket?.destroy()
          callback(err, null)
        } else callback(null, socket as Socket)
      })
    }
    if (proxy === null) {
      connectEndpoint()
      return
    }
    tunnel(proxy, hostname, port, opts.connectMs, (err, socket) => {
      if (err !== null || socket === null) callback(err, null)
      else if (!secure) callback(null, socket)
      else connectEndpoint(socket)
    })
  }
}

/** An HTTP CONNECT tunnel to host:port through `proxy`; the proxy's credentials go to the proxy alone. */
function tunnel (proxy: ProxyConfig, hostname: string, port: number, timeoutMs: number, callback: ConnectCallback): void {
  const authority = `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`
  const headers: Record<string, string> = { host: authority }
  if (proxy.authorization !== null) headers['proxy-authorization'] = proxy.authorization
  let done = false
  const finish = (err: Error | null, socket: Socket | null): void => {
    if (done) return
    done = true
    clearTimeout(timer)
    callback(err, socket)
  }
  const request = (proxy.protocol === 'https:' ? https : http).request({
    host: proxy.hostname,
    port: proxy.port,
    method: 'CONNECT',
    path: authority,
    headers,
    setHost: false,
    agent: false,
    ...(proxy.protocol === 'https:' && isIP(proxy.hostname) === 0 ? { servername: proxy.hostname } : {}),
  })
  const timer = setTimeout(() => {
    request.destroy()
    finish(new EgressProxyError('timeout', `the egress proxy ${proxy.label} did not open a tunnel to ${authority} in ${timeoutMs} ms`), null)
  }, timeoutMs)
  request.once('connect', (res, socket, head) => {
    const status = res.statusCode ?? 0
    if (status < 200 || status > 299) {
      socket.destroy()
      finish(new EgressProxyError('refused', `the egress proxy ${proxy.label} refused a tunnel to ${authority}: ${status} ${res.statusMessage ?? ''}`.trim(), { status }), null)
      return
    }
    if (head.length > 0) socket.unshift(head)
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 60_000)
    finish(null, socket)
  })
  request.once('response', (res) => {
    res.resume()
    finish(new EgressProxyError('refused', `the egress proxy ${proxy.label} answered CONNECT with ${res.statusCode ?? 0}`, { status: res.statusCode ?? 0 }), null)
  })
  request.once('error', (err: NodeJS.ErrnoException) => {
    finish(new EgressProxyError('unreachable', `the egress proxy ${proxy.label} could not be reached: ${err.code ?? err.message}`, { cause: err }), null)
  })
  request.end()
}

/** The connector as Node's `createConnection` (what `ws` and http.request take). */
export function createConnection (connect: Connector, protocol: 'http:' | 'https:'): (options: { host?: string | null, hostname?: string | null, port?: number | string | null, servername?: string }, callback: (err: Error | null, socket?: Socket) => void) => undefined {
  return (options, callback) => {
    connect({ protocol, hostname: options.hostname ?? options.host ?? 'localhost', port: options.port ?? '', servername: options.servername ?? null }, (err, socket) => {
      if (err !== null || socket === null) callback(err ?? new Error('no socket'))
      else callback(null, socket)
    })
    return undefined
  }
}
