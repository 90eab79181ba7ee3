// npm run demo works offline and shows what the README says it shows: an allow, a block with
// its 451 and decision line for Hong Kong staff wherever they connect from, and a route.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'

t.test('the demo: allow, block by identity, block by address, route', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += String(c) })
  child.stderr.on('data', (c: Buffer) => { out += String(c) })
  const [code] = await once(child, 'close') as [number]
  t.equal(code, 0, out)
  t.match(out, /New York analyst asks for Claude\n.*\n {2}-> HTTP 200/)
  t.match(out, /Hong Kong analyst on the New York VPN asks for Claude\n.*\n {2}-> HTTP 451: Model "claude-sonnet-5-5" is not available from US \(identity HK\)/)
  t.match(out, /"reason":"identity country HK is in the deny list of rule claude-frontier","status":451/)
  t.match(out, /travelling in Hong Kong asks for Claude\n.*\n {2}-> HTTP 451/)
  t.match(out, /-> HTTP 200, routed to bank-llm-70b/)
  t.match(out, /What reached the provider: 2 of 4 calls; identity tokens among them: 0\./)
})
