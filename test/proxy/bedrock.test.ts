// The official AWS SDK (BedrockRuntimeClient) as the client, a fake Bedrock runtime as the
// upstream: the model is read from the path (/model/{modelId}/...), percent-encoded as the SDK
// sends it, and matched by its canonical id; streams are Bedrock's binary event stream.
import t from 'tap'
import {
  AccessDeniedException,
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  GetAsyncInvokeCommand,
  InvokeModelCommand,
  ListAsyncInvokesCommand,
  StartAsyncInvokeCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { ASYNC_INVOCATION, startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const SONNET = 'anthropic.claude-sonnet-4-20250514-v1:0'
const PROFILE = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123'

/**
 * The AWS SDK pointed at a gateway's /bedrock. The client defaults to HTTP/2; the gateway speaks
 * HTTP/1.1 (README: Clients and SDKs). The caller's address is added after signing, as the
 * bank's proxy would add it.
 */
function bedrockClient (gatewayUrl: string, ip: string | null, credentials: { accessKeyId: string, secretAccessKey: string }, mount = 'bedrock'): BedrockRuntimeClient {
  const c = new BedrockRuntimeClient({ region: 'us-east-1', endpoint: `${gatewayUrl}/${mount}`, credentials, maxAttempts: 1, requestHandler: new NodeHttpHandler() })
  if (ip !== null) {
    c.middlewareStack.add((next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-forwarded-for'] = ip
      return next(args)
    }, { step: 'deserialize' })
  }
  return c
}

t.test('bedrock dialect', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  bedrock:
    url: "${upstream.url}"
    dialect: bedrock
    model_aliases: { "${PROFILE}": ${SONNET} }
policy:
  default: block
  rules:
    - { name: claude-frontier, models: ["claude-*"], deny: [HK, CN, MO], action: block }
    - { name: others, models: ["*"], deny: [], action: block }
`)
  t.teardown(gw.close)

  const client = (ip: string): BedrockRuntimeClient => bedrockClient(gw.url, ip, { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-never-logged' })
  const messages = [{ role: 'user' as const, content: [{ text: 'hi' }] }]

  t.test('InvokeModel: the SDK percent-encodes the id; the decision reads it decoded and canonical', async (t) => {
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    const res = await client(UNITED_STATES).send(new InvokeModelCommand({ modelId: SONNET, body, contentType: 'application/json' }))
    t.match(JSON.parse(Buffer.from(res.body).toString()), { type: 'message', content: [{ text: 'Hello from the fake upstream' }] })
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke', 'forwarded exactly as the SDK sent it')
    t.equal(call?.body.toString(), body)
    t.match(call?.headers.authorization, /^AWS4-HMAC-SHA256 /, 'the signature goes on untouched')
    t.match(gw.decisions().at(-1), { action: 'allow', model: SONNET, canonical_model: 'claude-sonnet-4-20250514', rule: 'claude-frontier', country: 'US' })
    t.notMatch(gw.rawLogs(), /secret-never-logged|AWS4-HMAC/)
  })

  t.test('Converse and ConverseStream: the binary event stream arrives event by event', async (t) => {
    const res = await client(UNITED_STATES).send(new ConverseCommand({ modelId: `us.${SONNET}`, messages }))
    t.equal(res.output?.message?.content?.[0]?.text, 'Hello from the fake upstream')
    t.match(gw.decisions().at(-1), { action: 'allow', model: `us.${SONNET}`, canonical_model: 'claude-sonnet-4-20250514' })

    const stream = await client(UNITED_STATES).send(new ConverseStreamCommand({ modelId: SONNET, messages }))
    let text = ''
    let stop: string | undefined
    for await (const event of stream.stream ?? []) {
      text += event.contentBlockDelta?.delta?.text ?? ''
      stop = event.messageStop?.stopReason ?? stop
    }
    t.equal(text, 'Hello from the fake upstream')
    t.equal(stop, 'end_turn')
  })

  t.test('InvokeModelWithResponseStream: chunks carry the model\'s own events', async (t) => {
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    const res = await client(UNITED_STATES).send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET, body, contentType: 'application/json' }))
    let text = ''
    for await (const event of res.body ?? []) {
      const inner = JSON.parse(Buffer.from(event.chunk?.bytes ?? new Uint8Array()).toString()) as { delta?: { text?: string } }
      text += inner.delta?.text ?? ''
    }
    t.equal(text, 'Hello from the fake upstream')
  })

  t.test('a blocked call is the SDK\'s AccessDeniedException with status 451 and the message', async (t) => {
    for (const modelId of [SONNET, `apac.${SONNET}`, `global.${SONNET}`, `arn:aws:bedrock:ap-east-1::foundation-model/${SONNET}`,
      `arn:aws:bedrock:ap-east-1:123456789012:inference-profile/apac.${SONNET}`, 'anthropic.claude-3-5-sonnet-20240620-v1:0', PROFILE]) {
      const before = upstream.calls.length
      const err = await client(HONG_KONG).send(new ConverseCommand({ modelId, messages })).then(() => null, (e: unknown) => e)
      t.ok(err instanceof AccessDeniedException, modelId)
      t.equal((err as AccessDeniedException).$metadata.httpStatusCode, 451, modelId)
      t.match((err as Error).message, /is not available from HK: blocked by rule "claude-frontier"/, modelId)
      t.equal(upstream.calls.length, before, `${modelId} never reaches the upstream`)
    }
    t.match(gw.decisions().at(-1), { action: 'block', model: PROFILE, canonical_model: 'claude-sonnet-4-20250514' })
  })

  t.test('an application inference profile that is not mapped is policy.unknown_model', async (t) => {
    const err = await client(UNITED_STATES).send(new ConverseCommand({ modelId: 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/zzz999', messages })).then(() => null, (e: unknown) => e)
    t.equal((err as AccessDeniedException).$metadata.httpStatusCode, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, reason: /the model cannot be seen \(this Bedrock ARN .* map it in upstreams\.bedrock\.model_aliases\): policy\.unknown_model is block/ })
  })

  t.test('errors carry x-amzn-ErrorType; a body that names another model is refused', async (t) => {
    const res = await send(`${gw.url}/bedrock/model/${encodeURIComponent(SONNET)}/invoke`, { body: '{"model":"gpt-4o"}', headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 400)
    t.equal(res.headers['x-amzn-errortype'], 'ValidationException')
    t.same(res.json(), { message: `the path names model "${SONNET}" and the body names "gpt-4o"; a request names one model` })
  })

  t.test('CountTokens names the model in the path too', async (t) => {
    const res = await send(`${gw.url}/bedrock/model/${encodeURIComponent(SONNET)}/count-tokens`, { body: '{"input":{"converse":{"messages":[]}}}', headers: { 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { model: SONNET, rule: 'claude-frontier' })
  })

  t.test('StartAsyncInvoke names the model as the body\'s modelId', async (t) => {
    const res = await send(`${gw.url}/bedrock/async-invoke`, { body: JSON.stringify({ modelId: SONNET, modelInput: {}, outputDataConfig: {} }), headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { model: SONNET, rule: 'claude-frontier' })
  })
})

t.test('asynchronous invocations through the AWS SDK: StartAsyncInvoke by its modelId, Get and List name none', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  bedrock: { url: "${upstream.url}", dialect: bedrock, endpoints: ["GET /async-invoke", "GET /async-invoke/*"] }
  bedrock-closed: { url: "${upstream.url}", dialect: bedrock }
policy:
  default: block
  rules:
    - { name: claude-frontier, models: ["claude-*"], deny: [HK], action: block }
    - { name: video, models: ["nova-reel*"], deny: [], action: block }
`)
  t.teardown(gw.close)
  const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-never-logged' }
  const client = (ip: string, mount = 'bedrock'): BedrockRuntimeClient => bedrockClient(gw.url, ip, creds, mount)
  const start = (modelId: string): StartAsyncInvokeCommand => new StartAsyncInvokeCommand({ modelId, modelInput: { taskType: 'TEXT_VIDEO' }, outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://bucket/out' } } })

  const started = await client(HONG_KONG).send(start('amazon.nova-reel-v1:1'))
  t.equal(started.invocationArn, ASYNC_INVOCATION)
  t.match(JSON.parse(String(upstream.calls.at(-1)?.body)), { modelId: 'amazon.nova-reel-v1:1', clientRequestToken: /./ }, 'the SDK\'s body, idempotency token and all, forwarded as read')
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'amazon.nova-reel-v1:1', canonical_model: 'nova-reel', rule: 'video' })

  const before = upstream.calls.length
  const refused = await client(HONG_KONG).send(start(`us.${SONNET}`)).then(() => null, (e: unknown) => e)
  t.ok(refused instanceof AccessDeniedException)
  t.equal(upstream.calls.length, before, 'a refused StartAsyncInvoke reaches nothing')
  t.match(gw.decisions().at(-1), { action: 'block', model: `us.${SONNET}`, rule: 'claude-frontier', reason: /HK is in the deny list/ })

  // GetAsyncInvoke: the SDK sends the invocation ARN as one segment, its ":" and "/" encoded.
  const got = await client(HONG_KONG).send(new GetAsyncInvokeCommand({ invocationArn: ASYNC_INVOCATION }))
  t.equal(got.invocationArn, ASYNC_INVOCATION)
  t.equal(got.status, 'InProgress')
  t.equal(upstream.calls.at(-1)?.url, `/async-invoke/${encodeURIComponent(ASYNC_INVOCATION)}`, 'the ARN forwarded exactly as the SDK encoded it')
  t.match(gw.decisions().at(-1), { action: 'allow', setting: 'endpoints', reason: /GET \/async-invoke\/arn%3aaws%3abedrock/ })

  const listed = await client(HONG_KONG).send(new ListAsyncInvokesCommand({ maxResults: 5 }))
  t.equal(listed.asyncInvokeSummaries?.[0]?.invocationArn, ASYNC_INVOCATION)
  t.match(upstream.calls.at(-1)?.url, /^\/async-invoke\?maxResults=5$/)
  t.match(gw.decisions().at(-1), { action: 'allow', setting: 'endpoints' })

  // Without an `endpoints` entry they name no model: policy.default decides, and here blocks.
  const closed = await client(UNITED_STATES, 'bedrock-closed').send(new GetAsyncInvokeCommand({ invocationArn: ASYNC_INVOCATION })).then(() => null, (e: unknown) => e)
  t.ok(closed instanceof AccessDeniedException)
  t.match(gw.decisions().at(-1), { action: 'block', setting: 'default', reason: /the endpoint names no model: policy\.default is block/ })

  // Only an invocation ARN may carry the encoded slash, and only in that segment.
  for (const path of [`/bedrock/async-invoke/${encodeURIComponent('arn:aws:bedrock:us-east-1:1:async-invoke/x/y')}`, `/bedrock/async-invoke/${encodeURIComponent(`arn:aws:bedrock:us-east-1::foundation-model/${SONNET}`)}`, `/bedrock/async-invoke/a%2Fb`]) {
    const res = await send(`${gw.url}${path}`, { method: 'GET', headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 400, path)
    t.match(gw.decisions().at(-1), { action: 'block', reason: /encoded slash/ }, path)
  }
})

t.test('aws_sigv4: the gateway signs for Bedrock with credentials it holds, and may then route', async (t) => {
  const creds = { region: 'us-east-1', service: 'bedrock', accessKeyId: 'AKIDGATEWAY', secretAccessKey: 'gateway-secret-never-logged' }
  const upstream = await startFakeUpstream({ sigv4: creds })
  t.teardown(upstream.close)
  const sovereign = await startFakeUpstream({ sigv4: creds })
  t.teardown(sovereign.close)
  process.env['TEST_AWS_SECRET'] = creds.secretAccessKey
  const aws = `aws_sigv4: { region: us-east-1, access_key_id: ${creds.accessKeyId}, secret_access_key: "\${TEST_AWS_SECRET}" }`
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  bedrock: { url: "${upstream.url}", dialect: bedrock, ${aws} }
  bedrock-sovereign: { url: "${sovereign.url}", dialect: bedrock, ${aws} }
policy:
  rules:
    - { name: claude-routed, upstreams: [bedrock], models: ["claude-*"], deny: [CN], action: { route: { upstream: bedrock-sovereign, model: "meta.llama3-1-70b-instruct-v1:0" } } }
    - { name: others, deny: [], action: block }
`)
  t.teardown(gw.close)
  const client = (ip: string): BedrockRuntimeClient => bedrockClient(gw.url, ip, { accessKeyId: 'AKIDCLIENT', secretAccessKey: 'client-secret' })
  const messages = [{ role: 'user' as const, content: [{ text: 'hi' }] }]

  const res = await client(UNITED_STATES).send(new ConverseCommand({ modelId: SONNET, messages }))
  t.equal(res.output?.message?.content?.[0]?.text, 'Hello from the fake upstream')
  const call = upstream.calls.at(-1)
  t.equal(call?.signatureValid, true, 'the forwarded request verifies under the gateway\'s credentials')
  t.match(call?.headers.authorization, /Credential=AKIDGATEWAY\//, 'the client\'s signature is not sent on')

  const stream = await client(UNITED_STATES).send(new ConverseStreamCommand({ modelId: `us.${SONNET}`, messages }))
  let text = ''
  for await (const event of stream.stream ?? []) text += event.contentBlockDelta?.delta?.text ?? ''
  t.equal(text, 'Hello from the fake upstream')
  t.equal(upstream.calls.at(-1)?.signatureValid, true)

  const routed = await client('114.114.114.114').send(new ConverseCommand({ modelId: SONNET, messages }))
  t.equal(routed.output?.message?.content?.[0]?.text, 'Hello from the fake upstream')
  t.equal(sovereign.calls.at(-1)?.url, '/model/meta.llama3-1-70b-instruct-v1:0/converse')
  t.equal(sovereign.calls.at(-1)?.signatureValid, true, 'a routed request is signed for its new path')
  t.match(gw.decisions().at(-1), { action: 'route', routed_model: 'meta.llama3-1-70b-instruct-v1:0' })
  t.notMatch(gw.rawLogs(), /gateway-secret-never-logged|AKIDGATEWAY|AWS4-HMAC/)

  // Without aws_sigv4 the client's own signature goes on; it covers the gateway's Host, so a
  // real Bedrock refuses it, even with the right credentials: the check above can fail.
  const passthrough = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
upstreams: { bedrock: { url: "${upstream.url}", dialect: bedrock } }
policy: { rules: [ { name: all, deny: [], action: block } ], unknown_location: allow }
`)
  t.teardown(passthrough.close)
  const direct = bedrockClient(passthrough.url, null, { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey })
  await direct.send(new ConverseCommand({ modelId: SONNET, messages }))
  t.equal(upstream.calls.at(-1)?.signatureValid, false, 'a client signature does not survive the proxy hop')
})

t.test('a route on a Bedrock upstream is refused at load unless the gateway signs for the target', async (t) => {
  const { loadConfig } = await import('../../src/config/load.js')
  const { writeConfig } = await import('../support/gateway.js')
  const file = writeConfig(`
upstreams:
  bedrock: { url: "http://127.0.0.1:1", dialect: bedrock }
  other: { url: "http://127.0.0.1:2", dialect: bedrock }
policy:
  rules:
    - { name: r, upstreams: [bedrock], deny: [HK], action: { route: { upstream: other, model: x } } }
`)
  await t.rejects(loadConfig(file), /policy\.rules\[0\]\.action\.route: this rule applies to "bedrock", which speaks bedrock: its requests are signed over path and body, so they can be routed only to an upstream the gateway signs for \(give "other" aws_sigv4\)/)
})
