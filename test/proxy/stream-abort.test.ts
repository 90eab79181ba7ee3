// For every dialect's stream (SSE and Bedrock's binary event stream): a client that goes away
// mid-stream aborts the upstream request within a second, and its decision line says so.
import net from 'node:net'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'

const UNITED_STATES = '8.8.8.8'
const STREAMS: Array<{ name: string, path: string, body: string }> = [
  { name: 'Anthropic SSE', path: '/anthropic/v1/messages', body: '{"model":"claude-sonnet-4-5","stream":true}' },
  { name: 'OpenAI SSE', path: '/openai/v1/chat/completions', body: '{"model":"gpt-4o","stream":true,"messages":[]}' },
  { name: 'Gemini SSE', path: '/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse', body: '{"contents":[]}' },
  { name: 'Vertex Claude SSE', path: '/vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict', body: '{"anthropic_version":"vertex-2023-10-16","stream":true,"messages":[]}' },
  { name: 'Bedrock ConverseStream (event stream)', path: '/bedrock/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream', body: '{"messages":[]}' },
  { name: 'Bedrock InvokeModelWithResponseStream (event stream)', path: '/bedrock/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream', body: '{"anthropic_version":"bedrock-2023-05-31","messages":[]}' },
]

for (const s of STREAMS) {
  t.test(`${s.name}: a client that goes away mid-stream aborts the upstream within one second`, async (t) => {
    const upstream = await startFakeUpstream({ streamGateMs: 20_000 })
    t.teardown(upstream.close)
    const dialects = ['anthropic', 'openai', 'gemini', 'vertex', 'bedrock']
    const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
${dialects.map((d) => `  ${d}: { url: "${upstream.url}", dialect: ${d} }`).join('\n')}
policy: { rules: [ { name: all, deny: [], action: block } ] }
`)
    t.teardown(gw.close)
    const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1')
    socket.write(`POST ${s.path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: ${UNITED_STATES}\r\ncontent-length: ${s.body.length}\r\n\r\n${s.body}`)
    const first = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => { resolve(d.toString('latin1')) }))
    t.match(first, /^HTTP\/1\.1 200 /, 'the stream started')
    const goneAt = Date.now()
    socket.destroy()
    while (upstream.abortedAt() === null && Date.now() - goneAt < 5000) await new Promise((resolve) => setTimeout(resolve, 10))
    const aborted = upstream.abortedAt()
    t.ok(aborted !== null && aborted - goneAt < 1000, `the upstream request ended within one second (${String((aborted ?? Infinity) - goneAt)} ms)`)
    t.equal(upstream.lastEventSentAt(), null, 'the upstream never finished its stream')
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.match(gw.decisions().at(-1), { action: 'allow', status: 499, cut: 'the client went away' })
  })
}
