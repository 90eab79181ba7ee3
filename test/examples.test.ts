// The shipped examples and demo data stay true: every config validates, and the committed
// demo databases are exactly what test/support/demo-data.ts builds.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadRuntime } from '../src/runtime.js'
import { DEMO_DIR, demoFiles } from './support/demo-data.js'

t.test('the committed demo databases are the ones the builder makes', async (t) => {
  for (const [name, bytes] of Object.entries(demoFiles())) {
    t.ok(readFileSync(join(DEMO_DIR, name)).equals(bytes), `${name} is up to date (npm run demo-data)`)
  }
})

t.test('every example config loads', async (t) => {
  for (const name of readdirSync('config').filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))) {
    const runtime = await loadRuntime(join('config', name))
    t.ok(runtime.policy.rulesByUpstream.size > 0, name)
  }
})
