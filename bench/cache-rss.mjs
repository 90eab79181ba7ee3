// Memory of a full location cache, in the whole gateway: the built gateway (dist/, plain node)
// started in this process from the config named in argv[2], as `geofence serve` starts it, its
// decision lines discarded; then argv[3] (default 100,000) distinct public callers located
// through its revision's locator, as requests would, and RSS read; then ten times as many, to
// show that the cache stays bounded. Run with --expose-gc; prints one JSON line.
import { Writable } from 'node:stream'
import { startGateway } from '../dist/server.js'

const config = process.argv[2]
const entries = Number(process.argv[3] ?? 100_000)
const discard = new Writable({ write (_chunk, _enc, done) { done() } })
const gw = await startGateway(config, { destination: discard, reload: false })
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
for (; i < entries; i++) gw.runtime.locator.locate(ip(i * 7919))
await settle()
const full = mb()
const fullSize = gw.runtime.locator.cacheSize
for (; i < entries * 10; i++) gw.runtime.locator.locate(ip(i * 7919))
await settle()
const after10x = mb()
process.stdout.write(`${JSON.stringify({ start, full, after10x, entries, fullSize, cacheSize: gw.runtime.locator.cacheSize })}\n`)
await gw.close()
process.exit(0)
