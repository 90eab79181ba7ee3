// A loopback HTTPS policy server for policy_source: it publishes one document and its signature
// (any path ending .yaml serves the document, the same path plus .sig the signature), with a
// strong ETag and If-None-Match answered 304, as a web server or object store does; it can
// answer 404 or 500 instead, or stop listening (and listen again on the same port). Every
// request is recorded: path, the If-None-Match it carried, and the status it got.
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Pem } from './pki.js'

export interface PolicyRequest {
  path: string
  ifNoneMatch: string | null
  status: number
  etag: string | null
}

export interface PolicyServer {
  /** https://127.0.0.1:PORT */
  origin: string
  requests: PolicyRequest[]
  /** What is served from now on: a document and its signature (null: 404 for the .sig). */
  publish: (document: string | Buffer, signature: string | Buffer | null) => void
  /** The ETag a document is served with. */
  etagOf: (document: string | Buffer) => string
  /** `ok` serves; `404` and `500` answer every request so. */
  mode: 'ok' | '404' | '500'
  /** Stops listening and cuts every connection (a server that is down). */
  stop: () => Promise<void>
  /** Listens again on the same port. */
  restart: () => Promise<void>
}

export async function startPolicyServer (tls: Pem): Promise<PolicyServer> {
  let document = Buffer.alloc(0)
  let signature: Buffer | null = null
  const etagOf = (doc: string | Buffer): string => `"${createHash('sha256').update(doc).digest('hex').slice(0, 20)}"`
  const requests: PolicyRequest[] = []
  const state: PolicyServer = {
    origin: '',
    requests,
    mode: 'ok',
    etagOf,
    publish: (doc, sig) => {
      document = Buffer.from(doc)
      signature = sig === null ? null : Buffer.from(sig)
    },
    stop: async () => { await stop() },
    restart: async () => { await listen(port) },
  }
  let server: Server
  let port = 0
  const listen = async (at: number): Promise<void> => {
    server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      const path = req.url ?? '/'
      const ifNoneMatch = typeof req.headers['if-none-match'] === 'string' ? req.headers['if-none-match'] : null
      const answer = (status: number, body: Buffer | null, etag: string | null): void => {
        requests.push({ path, ifNoneMatch, status, etag })
        res.writeHead(status, { 'content-type': path.endsWith('.sig') ? 'application/json' : 'application/yaml', ...(etag === null ? {} : { etag }) })
        res.end(body ?? undefined)
      }
      if (state.mode !== 'ok') answer(Number(state.mode), Buffer.from('not here\n'), null)
      else if (path.endsWith('.yaml.sig')) {
        if (signature === null) answer(404, Buffer.from('no signature\n'), null)
        else answer(200, signature, etagOf(signature))
      } else if (path.endsWith('.yaml')) {
        const etag = etagOf(document)
        if (ifNoneMatch !== null && ifNoneMatch.split(',').map((s) => s.trim()).includes(etag)) answer(304, null, etag)
        else answer(200, document, etag)
      } else answer(404, Buffer.from('no such document\n'), null)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(at, '127.0.0.1', () => { resolve() })
    })
    port = (server.address() as AddressInfo).port
    state.origin = `https://127.0.0.1:${port}`
  }
  const stop = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    server.closeAllConnections()
    await closed
  }
  await listen(0)
  return state
}
