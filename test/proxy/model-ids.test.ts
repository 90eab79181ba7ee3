// Model ids through the official SDKs, both ways. An id wrapped in a way the gateway cannot
// strip (an unknown Bedrock inference-profile prefix or vendor, an "ft:" id that does not
// parse, a "/" or ":" wrapper the API does not use) is policy.unknown_model, with a reason
// naming the wrapper: never matched as written, which under policy.default allow would pass.
// Ordinary ids (Ollama tags, Hugging Face names on an OpenAI- or Anthropic-compatible server,
// fine-tuned ids of OpenAI and Azure) keep working.
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI, { AzureOpenAI } from 'openai'
import { AccessDeniedException, BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const SONNET = 'anthropic.claude-sonnet-4-20250514-v1:0'
const AZURE_TUNED = 'gpt-4o-mini-2024-07-18.ft-0e208cf33a6a466994aff31a08aba678'

t.test('ids the gateway cannot strip fail closed; ordinary ids pass', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai, model_aliases: { router/gpt-4o-mini: gpt-4o-mini } }
  bedrock: { url: "${upstream.url}", dialect: bedrock }
  sovereign: { url: "${upstream.url}", dialect: openai-compatible }
  sovereign-claude: { url: "${upstream.url}", dialect: anthropic-compatible }
  azure: { url: "${upstream.url}", dialect: azure-openai, model_aliases: { tuned-desk: "${AZURE_TUNED}" } }
policy:
  default: allow
  unknown_location: block
  rules:
    - { name: claude-frontier, models: ["claude-*"], deny: [HK, CN], action: block }
    - { name: openai-frontier, models: ["gpt-*"], deny: [HK, CN], action: block }
`)
  t.teardown(gw.close)

  t.test('Bedrock (AWS SDK): an unknown inference-profile prefix or vendor is an unknown model', async (t) => {
    const bedrock = new BedrockRuntimeClient({ region: 'us-east-1', endpoint: `${gw.url}/bedrock`, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, maxAttempts: 1, requestHandler: new NodeHttpHandler() })
    bedrock.middlewareStack.add((next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-forwarded-for'] = UNITED_STATES
      return next(args)
    }, { step: 'deserialize' })
    const messages = [{ role: 'user' as const, content: [{ text: 'hi' }] }]
    const rows: Array<[string, RegExp]> = [
      [`xx.${SONNET}`, /the inference-profile prefix "xx\." is not one the gateway knows/],
      [`arn:aws:bedrock:us-east-1:123456789012:inference-profile/xx.${SONNET}`, /the inference-profile prefix "xx\."/],
      ['acme.claude-sonnet-4-20250514-v1:0', /the model vendor "acme\." is not one the gateway knows/],
      ['us.acme.text-v1:0', /the model vendor "acme\."/],
      ['mymodel', /"mymodel" is not a Bedrock model id/],
      ['arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT12345', /this Bedrock ARN \(prompt: .*\) does not say which model it serves/],
    ]
    for (const [modelId, reason] of rows) {
      const before = upstream.calls.length
      const err = await bedrock.send(new ConverseCommand({ modelId, messages })).then(() => null, (e: unknown) => e)
      t.ok(err instanceof AccessDeniedException, modelId)
      t.equal((err as AccessDeniedException).$metadata.httpStatusCode, 451, modelId)
      t.equal(upstream.calls.length, before, `${modelId}: never reaches the upstream`)
      t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: modelId, reason }, modelId)
      t.match(gw.decisions().at(-1), { reason: /map it in upstreams\.bedrock\.model_aliases\): policy\.unknown_model is block/ }, modelId)
    }
    const ok = await bedrock.send(new ConverseCommand({ modelId: `us.${SONNET}`, messages }))
    t.equal(ok.output?.message?.content?.[0]?.text, 'Hello from the fake upstream', 'a known prefix is read as before')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'claude-frontier', canonical_model: 'claude-sonnet-4-20250514' })
  })

  t.test('OpenAI and Anthropic (their SDKs): a "/" or ":" wrapper those APIs do not use is an unknown model', async (t) => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } })
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } })
    const rows: Array<{ model: string, call: (model: string) => Promise<unknown>, reason: RegExp }> = [
      { model: 'router/gpt-4o', call: async (m) => openai.chat.completions.create({ model: m, messages: [] }), reason: /"\/" in a model id is a wrapper the gateway does not know for the OpenAI API/ },
      { model: 'ft:gpt-4o-mini', call: async (m) => openai.chat.completions.create({ model: m, messages: [] }), reason: /a fine-tuned model id \("ft:\.\.\."\) that is not ft:BASE:ORG:SUFFIX:ID/ },
      { model: 'vendor/claude-sonnet-4-5', call: async (m) => anthropic.messages.create({ model: m, max_tokens: 8, messages: [] }), reason: /"\/" in a model id is a wrapper the gateway does not know for the Anthropic API/ },
      { model: 'claude-sonnet-4-5:thinking', call: async (m) => anthropic.messages.create({ model: m, max_tokens: 8, messages: [] }), reason: /":" in a model id/ },
    ]
    for (const row of rows) {
      const before = upstream.calls.length
      const err = await row.call(row.model).then(() => null, (e: unknown) => e)
      t.equal((err as { status?: number } | null)?.status, 451, row.model)
      t.equal(upstream.calls.length, before, `${row.model}: never reaches the upstream`)
      t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: row.model, reason: row.reason }, row.model)
    }
    // model_aliases maps such an id to the model it names.
    await openai.chat.completions.create({ model: 'router/gpt-4o-mini', messages: [] })
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', canonical_model: 'gpt-4o-mini' })
  })

  t.test('an OpenAI-compatible server\'s plain names keep working: Ollama tags, Hugging Face ids', async (t) => {
    const local = new OpenAI({ apiKey: 'none', baseURL: `${gw.url}/sovereign/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': HONG_KONG } })
    for (const model of ['llama3.1:8b', 'qwen2.5-coder:32b-instruct-q4_K_M', 'meta-llama/Llama-3.1-8B-Instruct', 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M']) {
      const res = await local.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })
      t.equal(res.choices[0]?.message.content, 'Hello from the fake upstream', model)
      t.match(gw.decisions().at(-1), { action: 'allow', model, canonical_model: model.toLowerCase(), reason: /policy\.default is allow/ }, model)
    }
    // An Ollama tag does not hide a model a rule names.
    const err = await local.chat.completions.create({ model: 'gpt-oss:20b', messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { rule: 'openai-frontier', canonical_model: 'gpt-oss:20b' })
  })

  t.test('an Anthropic-compatible server\'s plain names keep working (the Anthropic SDK); a known publisher is still read', async (t) => {
    const local = (ip: string): Anthropic => new Anthropic({ apiKey: 'none', baseURL: `${gw.url}/sovereign-claude`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
    for (const model of ['unsloth/Qwen3-Coder-30B-A3B-Instruct', 'qwen3-coder:30b', 'hf.co/unsloth/GLM-4.5-Air-GGUF:Q4_K_M']) {
      const res = await local(HONG_KONG).messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      t.match(res.content, [{ text: 'Hello from the fake upstream' }], model)
      t.match(gw.decisions().at(-1), { action: 'allow', model, canonical_model: model.toLowerCase(), reason: /policy\.default is allow/ }, model)
    }
    // On the anthropic dialect the same names are wrappers it does not know.
    const err = await new Anthropic({ apiKey: 'x', baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } }).messages.create({ model: 'qwen3-coder:30b', max_tokens: 8, messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { setting: 'unknown_model', reason: /":" in a model id is a wrapper the gateway does not know for the Anthropic API/ })
    // LiteLLM-style publisher prefixes are read: Claude stays Claude.
    const before = upstream.calls.length
    const hidden = await local(HONG_KONG).messages.create({ model: 'anthropic/claude-sonnet-4-5', max_tokens: 8, messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((hidden as { status?: number }).status, 451)
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'claude-frontier', canonical_model: 'claude-sonnet-4-5' })
  })

  t.test('Azure fine-tunes: a deployment of one is its base model; a fine-tuning job names a model, not a deployment', async (t) => {
    const azure = (ip: string): AzureOpenAI => new AzureOpenAI({ apiKey: 'k', apiVersion: '2024-10-21', baseURL: `${gw.url}/azure/openai`, deployment: 'tuned-desk', maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
    await azure(UNITED_STATES).chat.completions.create({ model: 'ignored', messages: [{ role: 'user', content: 'hi' }] })
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', model: 'tuned-desk', canonical_model: 'gpt-4o-mini-2024-07-18' })
    const err = await azure(HONG_KONG).chat.completions.create({ model: 'ignored', messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'openai-frontier', canonical_model: 'gpt-4o-mini-2024-07-18' })

    const v1 = (ip: string): OpenAI => new OpenAI({ apiKey: 'k', baseURL: `${gw.url}/azure/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
    for (const model of ['gpt-4o-mini-2024-07-18', AZURE_TUNED]) {
      await v1(UNITED_STATES).fineTuning.jobs.create({ model, training_file: 'file-abc' })
      t.equal(upstream.calls.at(-1)?.url, '/openai/v1/fine_tuning/jobs', model)
      t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', model, canonical_model: 'gpt-4o-mini-2024-07-18' }, model)
      const refused = await v1(HONG_KONG).fineTuning.jobs.create({ model, training_file: 'file-abc' }).then(() => null, (e: unknown) => e)
      t.equal((refused as { status?: number }).status, 451, model)
    }
    // A fine-tuned id that does not parse is not matched as written.
    await v1(UNITED_STATES).fineTuning.jobs.create({ model: 'gpt-4o-mini.ft-billing', training_file: 'file-abc' }).then(() => null, () => null)
    t.match(gw.decisions().at(-1), { action: 'block', setting: 'unknown_model', reason: /not Azure's BASE\.ft-ID/ })
  })
})
