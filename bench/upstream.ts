// A fast fake provider for the benchmark: a small JSON answer for any POST, and an SSE stream
// of timestamped events every 10 ms for a body with "stream":true. Prints its port.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

const answer = JSON.stringify({ id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } })
const EVENTS = Number(process.env['BENCH_SSE_EVENTS'] ?? 100)
const now = (): number => performance.timeOrigin + performance.now()

const server = http.createServer((req, res) => {
  let stream = false
  let seen = 0
  req.on('data', (c: Buffer) => {
    // Only the start of the body decides (bodies may be 10 MiB).
    if (seen < 256) stream = stream || c.subarray(0, 256).includes('"stream":true')
    seen += c.length
  })
  req.on('end', () => {
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
      res.end(answer)
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    let i = 0
    const tick = setInterval(() => {
      res.write(`event: content_block_delta\ndata: {"i":${i},"t":${now()}}\n\n`)
      if (++i === EVENTS) {
        clearInterval(tick)
        res.end()
      }
    }, 10)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
})
