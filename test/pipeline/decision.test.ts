// Stage decision, on its own: the policy's verdict on the models a request names, for its
// caller; a batch passes only if every model passes; a route that cannot be carried out on
// the request is a block that says why.
import t from 'tap'
import { decide } from '../../src/pipeline/decision.js'
import { readModels } from '../../src/pipeline/models.js'
import { MAINLAND_CHINA, UNITED_STATES, begun, testRuntime } from '../support/runtime.js'

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

t.test('decisions, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<{ name: string, method?: string, url: string, ip: string, body?: Buffer, want: Record<string, unknown>, model?: string | null }> = [
    { name: 'allowed where the rule does not deny', url: '/anthropic/v1/messages', ip: UNITED_STATES, body: json({ model: 'claude-opus-4-1' }), want: { action: 'allow', rule: 'claude' } },
    { name: 'blocked where it does', url: '/anthropic/v1/messages', ip: MAINLAND_CHINA, body: json({ model: 'claude-opus-4-1' }), want: { action: 'block', rule: 'claude', reason: /CN is in the deny list/ } },
    { name: 'routed by a rule', url: '/openai/v1/chat/completions', ip: MAINLAND_CHINA, body: json({ model: 'gpt-4o-mini' }), want: { action: 'route', rule: 'mini-routed', route: { upstream: 'sovereign', model: 'local-small' } } },
    { name: 'a batch is decided by its first refused model', url: '/anthropic/v1/messages/batches', ip: MAINLAND_CHINA, body: json({ requests: [{ custom_id: 'a', params: { model: 'other-model' } }, { custom_id: 'b', params: { model: 'claude-opus-4-1' } }] }), want: { action: 'block' }, model: 'other-model' },
    { name: 'a model no rule names falls to policy.default', url: '/anthropic/v1/messages', ip: UNITED_STATES, body: json({ model: 'other-model' }), want: { action: 'block', rule: null, setting: 'default' } },
    { name: 'a model-less endpoint falls to policy.default', method: 'GET', url: '/anthropic/v1/models', ip: UNITED_STATES, want: { action: 'block', setting: 'default' }, model: null },
    { name: 'an unseen model falls to policy.unknown_model', url: '/openai/v1/batches', ip: UNITED_STATES, body: json({}), want: { action: 'block', setting: 'unknown_model' }, model: null },
    { name: 'an endpoint the dialect does not list falls to policy.unknown_endpoint', url: '/openai/v1/foo', ip: UNITED_STATES, body: json({ model: 'gpt-4o' }), want: { action: 'block', rule: null, setting: 'unknown_endpoint', reason: 'the endpoint POST /v1/foo is not one the gateway knows: policy.unknown_endpoint is block' }, model: null },
    { name: 'a fine-tuned model is decided as its base model', url: '/openai/v1/chat/completions', ip: MAINLAND_CHINA, body: json({ model: 'ft:gpt-4o-2024-08-06:acme::x1' }), want: { action: 'block', rule: 'openai-frontier' } },
    { name: 'a wrapper the dialect does not know is an unknown model', url: '/openai/v1/chat/completions', ip: UNITED_STATES, body: json({ model: 'proxy/gpt-4o' }), want: { action: 'block', rule: null, setting: 'unknown_model', reason: /"\/" in a model id is a wrapper the gateway does not know for the OpenAI API; map it in upstreams\.openai\.model_aliases/ } },
    { name: 'a stored prompt without a model is an unknown model', url: '/openai/v1/responses', ip: UNITED_STATES, body: json({ prompt: { id: 'pmpt_1' } }), want: { action: 'block', setting: 'unknown_model', reason: /stored prompt/ }, model: null },
    { name: 'an unmapped deployment is an unknown model', url: '/azure/openai/deployments/other/chat/completions', ip: UNITED_STATES, body: json({}), want: { action: 'block', setting: 'unknown_model', reason: /model_aliases/ } },
    { name: 'a mapped deployment is decided as its model', url: '/azure/openai/deployments/prod-4o/chat/completions', ip: MAINLAND_CHINA, body: json({}), want: { action: 'block', rule: 'openai-frontier' } },
    { name: 'an unknown location is blocked by policy.unknown_location', url: '/anthropic/v1/messages', ip: '10.1.2.3', body: json({ model: 'claude-opus-4-1' }), want: { action: 'block', reason: /unknown/ } },
  ]
  for (const row of rows) {
    const { state, head } = begun(runtime, row.method ?? 'POST', row.url, row.ip)
    const endpoint = state.endpoint
    if (endpoint === null) throw new Error(`${row.url} is mounted`)
    const read = await readModels({ endpoint, method: head.method, headers: head.headers, body: row.body })
    const decided = decide({ runtime, upstream: endpoint.upstream, client: null, location: state.location, locationProblem: state.client.problem ?? state.location.reason }, endpoint, read)
    t.match(decided.decision, row.want, row.name)
    if (row.model !== undefined) t.equal(decided.model?.written ?? null, row.model, `${row.name}: the model the decision is about`)
  }
})

t.test('a route is decided again on its target, for the same caller; routes do not chain', async (t) => {
  const runtime = await testRuntime(`
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  openai: { url: "http://127.0.0.1:1", dialect: openai }
  sovereign: { url: "http://127.0.0.1:2", dialect: openai-compatible }
  onward: { url: "http://127.0.0.1:3", dialect: openai-compatible }
policy:
  default: block
  rules:
    - { name: to-sovereign, upstreams: [openai], models: ["gpt-4o*"], deny: [CN, RU], action: { route: { upstream: sovereign, model: local-small } } }
    - { name: to-nowhere, upstreams: [openai], models: ["gpt-5*"], deny: [CN], action: { route: { upstream: sovereign, model: unlisted } } }
    - { name: sovereign-not-for-russia, upstreams: [sovereign], models: ["local-*"], deny: [RU], action: block }
    - { name: chained, upstreams: [sovereign], models: ["relay-*"], deny: [CN], action: { route: { upstream: onward, model: local-small } } }
    - { name: relay, upstreams: [openai], models: ["o3*"], deny: [CN], action: { route: { upstream: sovereign, model: relay-1 } } }
`)
  const rows: Array<[string, string, string, Record<string, unknown>]> = [
    ['a route the target allows', 'gpt-4o-mini', MAINLAND_CHINA, { action: 'route', route: { upstream: 'sovereign', model: 'local-small' } }],
    ['a route whose target the caller may not use', 'gpt-4o-mini', '95.173.136.70', { action: 'block', rule: 'to-sovereign', reason: /refused for this caller \(country RU is in the deny list of rule sovereign-not-for-russia\)/ }],
    ['a route to a model no rule of the target allows', 'gpt-5', MAINLAND_CHINA, { action: 'block', reason: /refused for this caller \(no rule matches model "unlisted": policy.default is block\)/ }],
    ['a route that would be routed again', 'o3', MAINLAND_CHINA, { action: 'block', reason: /routes do not chain/ }],
  ]
  for (const [name, model, ip, want] of rows) {
    const { state, head } = begun(runtime, 'POST', '/openai/v1/chat/completions', ip)
    const endpoint = state.endpoint
    if (endpoint === null) throw new Error('mounted')
    const read = await readModels({ endpoint, method: 'POST', headers: head.headers, body: json({ model }) })
    t.match(decide({ runtime, upstream: endpoint.upstream, client: null, location: state.location, locationProblem: undefined }, endpoint, read).decision, want, name)
  }
})

t.test('a route the request cannot carry is a block that says why', async (t) => {
  const runtime = await testRuntime(`
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  openai: { url: "http://127.0.0.1:1", dialect: openai }
  sovereign: { url: "http://127.0.0.1:2", dialect: openai-compatible }
policy:
  default: block
  rules:
    - { name: routed, upstreams: [openai], models: ["gpt-*"], deny: [CN], action: { route: { upstream: sovereign, model: local } } }
`)
  const multipart = Buffer.from('--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-transcribe\r\n--b--\r\n')
  const { state, head } = begun(runtime, 'POST', '/openai/v1/audio/transcriptions', MAINLAND_CHINA, { 'content-type': 'multipart/form-data; boundary=b' })
  const endpoint = state.endpoint
  if (endpoint === null) throw new Error('mounted')
  const read = await readModels({ endpoint, method: 'POST', headers: head.headers, body: multipart })
  const { decision } = decide({ runtime, upstream: endpoint.upstream, client: null, location: state.location, locationProblem: undefined }, endpoint, read)
  t.match(decision, { action: 'block', rule: 'routed', reason: /a multipart request is not routed, so it is blocked/ })
})
