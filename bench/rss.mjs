// Memory of the location cache, run on the built gateway (dist/) with plain node:
// RSS with the embedded database and a full 100,000-entry cache, and after 1,000,000 distinct
// caller addresses (the cache must stay bounded). Run with --expose-gc.
import { parseConfig } from '../dist/config/load.js'
import { createRuntime } from '../dist/runtime.js'

const config = parseConfig('bench.yaml', Buffer.from(`
upstreams: { anthropic: { url: "http://127.0.0.1:1", dialect: anthropic } }
geoip: { cache: { max_entries: 100000, ttl: 1h } }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
`), {})
const runtime = await createRuntime(config)
const mb = () => process.memoryUsage().rss / 1024 / 1024
// Full collections, with pauses so that V8 can hand free pages back: steady state, not churn.
const settle = async () => {
  for (let k = 0; k < 3; k++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
const ip = (n) => `${11 + ((n >>> 24) % 100)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
await settle()
const start = mb()
let i = 0
for (; i < 100_000; i++) runtime.locator.locate(ip(i * 7919))
await settle()
const after100k = mb()
for (; i < 1_000_000; i++) runtime.locator.locate(ip(i * 7919))
await settle()
const after1m = mb()
process.stdout.write(`${JSON.stringify({ start, after100k, after1m, cacheSize: runtime.locator.cacheSize })}\n`)
