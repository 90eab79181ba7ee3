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

t.test('Azure deployments named in headers: decided with the request\'s models, not forwarded where none are read', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  azure:
    url: "${upstream.url}"
    dialect: azure-openai
    model_aliases: { prod-chat: gpt-4o-2024-11-20, img-desk: gpt-image-1, chat-cn: deepseek-chat }
policy:
  default: allow
  rules:
    - { name: images, models: ["gpt-image-*"], deny: [HK], action: block }
    - { name: openai-frontier, models: ["gpt-*"], deny: [CN], action: block }
    - { name: deepseek, models: ["deepseek-*"], deny: [US], action: block }
`)
  t.teardown(gw.close)
  // As Azure's docs configure it: the image deployment as a default header of the v1 client.
  const v1 = (ip: string, headers: Record<string, string>): OpenAI => new OpenAI({ apiKey: 'k', baseURL: `${gw.url}/azure/openai/v1`, defaultHeaders: { 'x-forwarded-for': ip, ...headers }, maxRetries: 0 })
  const IMAGE = { 'x-ms-oai-image-generation-deployment': 'img-desk' }
  const MESH = (deployment: string): Record<string, string> => ({ 'x-ms-model-mesh-model-name': deployment })

  t.test('the Responses image_generation tool runs the header\'s deployment, which is decided', async (t) => {
    const create = async (ip: string): Promise<unknown> => v1(ip, IMAGE).responses.create({ model: 'prod-chat', input: 'a cat', tools: [{ type: 'image_generation' }] })
    await create(UNITED_STATES)
    t.equal(upstream.calls.at(-1)?.headers['x-ms-oai-image-generation-deployment'], 'img-desk', 'forwarded once decided')
    t.match(gw.decisions().at(-1), { action: 'allow', batch_models: ['prod-chat', 'img-desk'] })
    const before = upstream.calls.length
    const err = await create(HONG_KONG).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451, 'refused where the image model is, though the chat model is allowed')
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'images', model: 'img-desk', canonical_model: 'gpt-image-1' })
  })

  t.test('x-ms-model-mesh-model-name stands in for a model the body leaves out, and is decided beside one it names', async (t) => {
    await v1(UNITED_STATES, MESH('img-desk')).images.generate({ prompt: 'a cat' })
    t.equal(upstream.calls.at(-1)?.url, '/openai/v1/images/generations')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'images', model: 'img-desk', canonical_model: 'gpt-image-1' })
    const hidden = await v1(UNITED_STATES, MESH('chat-cn')).chat.completions.create({ model: 'prod-chat', messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((hidden as { status?: number }).status, 451, 'an allowed body model does not carry a denied header deployment')
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'deepseek', model: 'chat-cn', batch_models: ['prod-chat', 'chat-cn'] })
    // On a deployment's path too (the openai SDK's AzureOpenAI client).
    const classic = new AzureOpenAI({ endpoint: `${gw.url}/azure`, apiKey: 'k', apiVersion: '2024-10-21', deployment: 'prod-chat', defaultHeaders: { 'x-forwarded-for': UNITED_STATES, ...MESH('chat-cn') }, maxRetries: 0 })
    const err = await classic.chat.completions.create({ model: 'x', messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'deepseek', model: 'chat-cn' })
    // A header naming two deployments is refused, with a decision line.
    const two = await send(`${gw.url}/azure/openai/v1/chat/completions`, { body: '{"model":"prod-chat","messages":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES, 'x-ms-model-mesh-model-name': ['prod-chat', 'chat-cn'] } })
    t.equal(two.status, 400)
    t.match(gw.decisions().at(-1), { action: 'block', status: 400, reason: /x-ms-model-mesh-model-name header names more than one model/ })
  })

  t.test('where no model is read, a header naming one is not forwarded', async (t) => {
    await v1(HONG_KONG, { ...IMAGE, ...MESH('chat-cn') }).models.list()
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/openai/v1/models')
    t.equal(call?.headers['x-ms-oai-image-generation-deployment'], undefined)
    t.equal(call?.headers['x-ms-model-mesh-model-name'], undefined)
    t.match(gw.decisions().at(-1), { action: 'allow', setting: 'default', model: null })
  })
})

