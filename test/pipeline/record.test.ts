// The decision record, on its own: one line per request, built field by field from the
// request state (never from headers or bodies), whatever stage the request ended in.
import t from 'tap'
import { decisionRecord } from '../../src/pipeline/record.js'
import { MAINLAND_CHINA, begun, testRuntime } from '../support/runtime.js'

t.test('what the line says, row by row', async (t) => {
  const runtime = await testRuntime()
  const secret = { authorization: 'Bearer sk-never-logged', cookie: 'session=never-logged' }
  const rows: Array<{ name: string, url: string, fill: (st: ReturnType<typeof begun>['state']) => void, want: Record<string, unknown>, absent?: string[] }> = [
    {
      name: 'a block',
      url: '/anthropic/v1/messages?key=never-logged',
      fill: (st) => { st.model = 'claude-opus-4-1'; st.canonicalModel = 'claude-opus-4-1'; st.decision = { action: 'block', enforced: true, rule: 'claude', reason: 'country CN is in the deny list of rule claude' } },
      want: { decision_id: 'test-decision', policy_revision: runtime.policy.revision, client_ip: MAINLAND_CHINA, ip_source: 'x-forwarded-for', country: 'CN', upstream: 'anthropic', method: 'POST', path: '/anthropic/v1/messages', model: 'claude-opus-4-1', canonical_model: 'claude-opus-4-1', rule: 'claude', action: 'block', enforced: true, status: 451 },
    },
    {
      name: 'a route names where it went',
      url: '/openai/v1/chat/completions',
      fill: (st) => { st.model = 'gpt-4o-mini'; st.decision = { action: 'route', enforced: true, rule: 'mini-routed', reason: 'r', route: { upstream: 'sovereign', model: 'local-small' } } },
      want: { action: 'route', routed_upstream: 'sovereign', routed_model: 'local-small' },
    },
    {
      name: 'a batch lists its models',
      url: '/anthropic/v1/messages/batches',
      fill: (st) => { st.batchModels = ['a', 'b']; st.decision = { action: 'allow', enforced: true, rule: 'claude', reason: 'r' } },
      want: { batch_models: ['a', 'b'] },
    },
    {
      name: 'a request that ended before any decision is a block that says so',
      url: '/anthropic/v1/messages',
      fill: () => {},
      want: { action: 'block', enforced: true, rule: null, reason: 'the request ended before a decision' },
      absent: ['canonical_model', 'routed_upstream', 'batch_models', 'client'],
    },
  ]
  for (const row of rows) {
    const { state } = begun(runtime, 'POST', row.url, MAINLAND_CHINA, secret)
    row.fill(state)
    const record = decisionRecord(state, 'POST', row.url, row.want['status'] as number ?? 200)
    t.match(record, row.want, row.name)
    for (const key of row.absent ?? []) t.notOk(key in record, `${row.name}: no ${key}`)
    t.notMatch(JSON.stringify(record), /never-logged/, `${row.name}: no credential, cookie or query`)
  }
})
