// The AWS SDK's Bedrock client as an application runs it: its DEFAULT request handler (HTTP/2,
// NodeHttp2Handler), trusting the gateway's private CA only through NODE_EXTRA_CA_CERTS (the
// handler takes no CA option). Run as a child process; prints one JSON line per call.
//   node bedrock-default-client.mjs ENDPOINT FORWARDED_FOR
import { BedrockRuntimeClient, ConverseStreamCommand, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime'

const [endpoint, ip] = process.argv.slice(2)
const client = new BedrockRuntimeClient({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-never-logged' } })
client.middlewareStack.add((next) => async (args) => {
  args.request.headers['x-forwarded-for'] = ip
  return next(args)
}, { step: 'deserialize' })
const handler = client.config.requestHandler
const out = (o) => { process.stdout.write(`${JSON.stringify(o)}\n`) }
out({ handler: handler.constructor.name })
const SONNET = 'anthropic.claude-sonnet-4-20250514-v1:0'
try {
  const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
  const res = await client.send(new InvokeModelCommand({ modelId: SONNET, body, contentType: 'application/json' }))
  out({ call: 'invoke', status: res.$metadata.httpStatusCode, text: JSON.parse(Buffer.from(res.body).toString()).content[0].text })
} catch (err) {
  out({ call: 'invoke', error: err.name, status: err.$metadata?.httpStatusCode, message: err.message })
}
try {
  const res = await client.send(new ConverseStreamCommand({ modelId: SONNET, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }))
  const events = []
  for await (const e of res.stream) events.push(Object.keys(e)[0])
  out({ call: 'converse-stream', status: res.$metadata.httpStatusCode, events })
} catch (err) {
  out({ call: 'converse-stream', error: err.name, status: err.$metadata?.httpStatusCode, message: err.message })
}
client.destroy()
