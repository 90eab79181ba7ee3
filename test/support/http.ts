// A plain HTTP client over node:http, so a test can choose its local address (127.0.0.2)
// and see status, headers and body exactly as sent.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'

export interface Response {
  status: number
  headers: IncomingHttpHeaders
  body: string
  json: () => any
}

export async function send (url: string, opts: { method?: string, headers?: OutgoingHttpHeaders, body?: string | Buffer, localAddress?: string, family?: number } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    // The path is sent exactly as written (new URL() would resolve dot segments and backslashes).
    const m = /^http:\/\/(\[[^\]]+\]|[^/:]+):(\d+)(\/.*)?$/.exec(url)
    if (m === null) throw new Error(`not a test URL: ${url}`)
    const req = http.request({
      host: (m[1] ?? '').replace(/^\[|\]$/g, ''),
      port: Number(m[2]),
      path: m[3] ?? '/',
      method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
      headers: opts.headers,
      agent: false,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

export const json = (value: unknown): { body: string, headers: OutgoingHttpHeaders } => ({
  body: JSON.stringify(value),
  headers: { 'content-type': 'application/json' },
})
