// No credential and no prompt or completion text reaches a log line, on any path:
// allowed, blocked, refused, upstream failure, streamed.
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const SECRETS = {
  authorization: 'Bearer sk-ant-secret-authorization-7f3a',
  'x-api-key': 'sk-ant-secret-xapikey-91bc',
  'api-key': 'azure-secret-apikey-55de',
  'x-goog-api-key': 'AIzaSecretGoogKey-0a1b',
  cookie: 'session=secret-cookie-value-77',
}
const PROMPT = 'PROMPT-TEXT-confidential-merger-plans'

t.test('credentials and bodies never appear in any log line', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const body = (model: unknown, stream = false): string => JSON.stringify({ model, stream, max_tokens: 5, messages: [{ role: 'user', content: PROMPT }] })
  const go = async (path: string, payload: string, ip: string): Promise<number> =>
    (await send(`${gw.url}${path}?key=${SECRETS['x-goog-api-key']}`, { body: payload, headers: { ...SECRETS, 'content-type': 'application/json', 'x-forwarded-for': ip } })).status

  t.equal(await go('/anthropic/v1/messages', body('claude-sonnet-4-5'), '8.8.8.8'), 200)
  t.equal(await go('/anthropic/v1/messages', body('claude-sonnet-4-5', true), '8.8.8.8'), 200)
  t.equal(await go('/anthropic/v1/messages', body('claude-sonnet-4-5'), '203.198.0.1'), 451)
  t.equal(await go('/openai/v1/chat/completions', `{"model": "gpt-4o", "messages": [${PROMPT}`, '8.8.8.8'), 400)
  t.equal(await go('/openai/v1/chat/completions', body('llama-3-70b'), '8.8.8.8'), 451)
  t.equal(await go('/openai/v1/chat/completions', body(42), '8.8.8.8'), 400)
  t.equal(await go('/nowhere', body('x'), '8.8.8.8'), 404)
  await gw.close()
  const dead = await startTestGateway(baseConfig('http://127.0.0.1:1'))
  t.teardown(dead.close)
  t.equal((await send(`${dead.url}/anthropic/v1/messages`, { body: body('claude-sonnet-4-5'), headers: { ...SECRETS, 'x-forwarded-for': '8.8.8.8' } })).status, 502)

  const logs = gw.rawLogs() + dead.rawLogs()
  t.ok(gw.decisions().length >= 6, 'the decision lines were captured')
  t.ok(dead.logs().some((l) => l['msg'] === 'request failed'), 'the 502 error line was captured')
  for (const [name, value] of Object.entries(SECRETS)) {
    t.notOk(logs.includes(value), `the ${name} value is not logged`)
    t.notOk(logs.includes(value.split(/[ =]/).pop() ?? value), `no part of the ${name} value is logged`)
  }
  t.notOk(logs.includes('confidential-merger-plans'), 'prompt text is not logged')
  t.notOk(logs.includes('Hello from the fake upstream') || logs.includes('fake upstream'), 'completion text is not logged')
  t.notOk(logs.includes('?key='), 'query strings are not logged')
})
