// A fast fake provider for the benchmark: a small JSON answer for any POST, and an SSE stream
// of BENCH_SSE_EVENTS events, one every BENCH_SSE_INTERVAL ms, for a body with "stream":true.
// Each event carries the monotonic clock (process.hrtime.bigint(), nanoseconds, the same clock
// in every process on the machine) at which it was written, so that a client can tell, to the
// microsecond, how long it took to arrive. Prints its port.
import http from 'node:http'

const answer = JSON.stringify({ id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } })
const EVENTS = Number(process.env.BENCH_SSE_EVENTS ?? 100)
const INTERVAL = Number(process.env.BENCH_SSE_INTERVAL ?? 10)

const server = http.createServer((req, res) => {
  let stream = false
  let seen = 0
  req.on('data', (c) => {
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
    res.flushHeaders()
    let i = 0
    const tick = setInterval(() => {
      res.write(`event: content_block_delta\ndata: {"i":${i},"t":"${process.hrtime.bigint()}"}\n\n`)
      if (++i === EVENTS) {
        clearInterval(tick)
        res.end()
      }
    }, INTERVAL)
    res.once('close', () => { clearInterval(tick) })
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`)
})
