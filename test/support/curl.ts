// curl as a client: the command line a bank's engineer would try first, over HTTP/1.1 or
// HTTP/2, with a private CA and a client certificate. Run asynchronously, so that a gateway in
// the same process keeps answering.
import { execFile } from 'node:child_process'

export interface CurlResult {
  /** 0 on a completed exchange; curl's exit code otherwise (35: TLS handshake, 56: receive failure...). */
  exit: number
  status: number
  /** "1.1" or "2". */
  httpVersion: string
  body: string
  headers: Record<string, string>
}

export interface CurlOptions {
  http2?: boolean
  cacert?: string
  cert?: string
  key?: string
  headers?: Record<string, string>
  body?: string
  /** --no-buffer: print the body as it arrives (for streams). */
  method?: string
}

export async function curl (url: string, opts: CurlOptions = {}): Promise<CurlResult> {
  const args = ['-sS', '--max-time', '20', opts.http2 === true ? '--http2' : '--http1.1', '-D', '-', '-w', '\n%{http_code} %{http_version}']
  if (opts.cacert !== undefined) args.push('--cacert', opts.cacert)
  if (opts.cert !== undefined) args.push('--cert', opts.cert)
  if (opts.key !== undefined) args.push('--key', opts.key)
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`)
  if (opts.body !== undefined) args.push('--data-binary', opts.body)
  if (opts.method !== undefined) args.push('-X', opts.method)
  args.push(url)
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      const exit = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      const lastNl = stdout.lastIndexOf('\n')
      const [code = '0', version = ''] = stdout.slice(lastNl + 1).split(' ')
      const text = stdout.slice(0, Math.max(0, lastNl))
      const split = text.indexOf('\r\n\r\n')
      const head = split === -1 ? '' : text.slice(0, split)
      const headers: Record<string, string> = {}
      for (const line of head.split('\r\n').slice(1)) {
        const colon = line.indexOf(':')
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ exit, status: Number(code), httpVersion: version, body: split === -1 ? '' : text.slice(split + 4), headers })
    })
  })
}
