// The floor of our stack: Fastify + @fastify/http-proxy with no geofencing, same upstream.
// Plain JavaScript, run with plain node as the gateway's dist/ is, so that neither carries a
// TypeScript loader in its start-up time or its memory.
import fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'

const upstream = process.argv[2] ?? ''
const app = fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 })
await app.register(httpProxy, { upstream, prefix: '/anthropic', rewritePrefix: '', undici: { connections: 128, pipelining: 1 } })
await app.listen({ host: '127.0.0.1', port: 0 })
const addr = app.server.address()
process.stdout.write(`${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`)
