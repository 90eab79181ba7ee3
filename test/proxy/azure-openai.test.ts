// Azure OpenAI: the openai SDK's AzureOpenAI client (deployments in the path) and the v1 API
// (the deployment as the body's model). A deployment name says nothing of its model: the
// upstream's model_aliases maps it, and an unmapped one is policy.unknown_model.
import t from 'tap'
import OpenAI, { AzureOpenAI } from 'openai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'

t.test('azure-openai dialect', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  azure:
    url: "${upstream.url}"
    dialect: azure-openai
    model_aliases: { prod-chat: gpt-4o-2024-11-20, Embeddings-Large: text-embedding-3-large }
policy:
  default: block
  rules:
    - { name: openai-frontier, models: ["gpt-*", "o[0-9]*"], deny: [HK, CN, MO], action: block }
    - { name: embeddings, models: ["text-embedding-*"], deny: [], action: block }
`)
  t.teardown(gw.close)
  const azure = (ip: string, deployment: string): AzureOpenAI => new AzureOpenAI({
    endpoint: `${gw.url}/azure`,
    apiKey: 'azure-key-never-logged',
    apiVersion: '2024-10-21',
    deployment,
    defaultHeaders: { 'x-forwarded-for': ip },
    maxRetries: 0,
  })
  const chat = { model: 'ignored-by-azure', messages: [{ role: 'user' as const, content: 'hi' }] }

  t.test('a mapped deployment is decided as the model it serves; JSON and a stream', async (t) => {
    const res = await azure(UNITED_STATES, 'prod-chat').chat.completions.create(chat)
    t.equal(res.choices[0]?.message.content, 'Hello from the fake upstream')
    t.match(upstream.calls.at(-1)?.url, /^\/openai\/deployments\/prod-chat\/chat\/completions\?api-version=2024-10-21$/)
    t.match(gw.decisions().at(-1), { action: 'allow', model: 'prod-chat', canonical_model: 'gpt-4o-2024-11-20', rule: 'openai-frontier' })
    let text = ''
    for await (const chunk of await azure(UNITED_STATES, 'prod-chat').chat.completions.create({ ...chat, stream: true })) text += chunk.choices[0]?.delta.content ?? ''
    t.equal(text, 'Hello from the fake upstream')
    t.notMatch(gw.rawLogs(), /azure-key-never-logged/)
  })

  t.test('a blocked call is the SDK\'s APIError with status 451 and the code', async (t) => {
    const before = upstream.calls.length
    const err = await azure(HONG_KONG, 'prod-chat').chat.completions.create(chat).then(() => null, (e: unknown) => e)
    t.ok(err instanceof OpenAI.APIError)
    t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 451)
    t.equal((err as InstanceType<typeof OpenAI.APIError>).code, 'unsupported_country_region_territory')
    t.equal(upstream.calls.length, before)
  })

  t.test('an unmapped deployment is policy.unknown_model, wherever the caller is', async (t) => {
    const err = await azure(UNITED_STATES, 'someone-elses-deployment').chat.completions.create(chat).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: 'someone-elses-deployment', reason: /an Azure OpenAI deployment name does not say which model it serves; map it in upstreams\.azure\.model_aliases/ })
  })

  t.test('aliases are matched without regard to case; every operation below a deployment names it', async (t) => {
    const res = await send(`${gw.url}/azure/openai/deployments/embeddings-large/embeddings?api-version=2024-10-21`, { body: '{"input":"x"}', headers: { 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 200)
    t.match(gw.decisions().at(-1), { action: 'allow', canonical_model: 'text-embedding-3-large', rule: 'embeddings' })
    const audio = await send(`${gw.url}/azure/openai/deployments/prod-chat/audio/transcriptions?api-version=2024-10-21`, { body: 'x', headers: { 'content-type': 'multipart/form-data; boundary=b', 'x-forwarded-for': HONG_KONG } })
    t.equal(audio.status, 451)
  })

  t.test('the classic Responses API names the deployment in the body', async (t) => {
    const hk = await send(`${gw.url}/azure/openai/responses?api-version=2025-04-01-preview`, { body: '{"model":"prod-chat","input":"hi"}', headers: { 'x-forwarded-for': HONG_KONG } })
    t.equal(hk.status, 451)
    t.match(gw.decisions().at(-1), { model: 'prod-chat', canonical_model: 'gpt-4o-2024-11-20', rule: 'openai-frontier' })
  })

  t.test('the v1 API: the openai SDK with the deployment as the body\'s model', async (t) => {
    const v1 = (ip: string): OpenAI => new OpenAI({ apiKey: 'k', baseURL: `${gw.url}/azure/openai/v1`, defaultHeaders: { 'x-forwarded-for': ip }, maxRetries: 0 })
    const ok = await v1(UNITED_STATES).chat.completions.create({ ...chat, model: 'prod-chat' })
    t.equal(ok.choices[0]?.message.content, 'Hello from the fake upstream')
    t.equal(upstream.calls.at(-1)?.url, '/openai/v1/chat/completions')
    const err = await v1(HONG_KONG).chat.completions.create({ ...chat, model: 'prod-chat' }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
  })
})
