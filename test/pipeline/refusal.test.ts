// The refusal shapes, on their own: every dialect's error body and headers for a block and for
// an error, so that each official SDK raises its usual typed error.
import t from 'tap'
import { GatewayError } from '../../src/errors.js'
import { blockRefusal, errorRefusal, refusedBeforeDecision } from '../../src/pipeline/refusal.js'
import { MAINLAND_CHINA, begun, testRuntime } from '../support/runtime.js'

t.test('a block and an error in each upstream\'s dialect, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['/anthropic/v1/messages', { type: 'error', error: { type: 'permission_error' } }, { type: 'error', error: { type: 'invalid_request_error' } }],
    ['/openai/v1/chat/completions', { error: { type: 'permission_error', code: 'unsupported_country_region_territory' } }, { error: { type: 'invalid_request_error' } }],
    ['/gemini/v1beta/models/gemini-2.5-pro:generateContent', { error: { code: 451, status: /./ } }, { error: { code: 400, status: 'INVALID_ARGUMENT' } }],
    ['/bedrock/model/anthropic.claude-opus-4-1-20250805-v1%3A0/invoke', { message: /not available/ }, { message: /./ }],
  ]
  for (const [url, blocked, invalid] of rows) {
    const { state } = begun(runtime, 'POST', url, MAINLAND_CHINA)
    state.model = 'some-model'
    const block = blockRefusal(state, { action: 'block', enforced: true, rule: 'r', reason: 'because' })
    t.equal(block.status, 451, `${url}: 451`)
    t.match(block.body, blocked, `${url}: block body`)
    t.match(JSON.stringify(block.body), /Model \\"some-model\\" is not available from CN: blocked by rule \\"r\\" \(because\)\. Decision id test-decision\./, `${url}: the message says what, where, which rule, why`)
    const error = errorRefusal(state, new GatewayError('invalid_request', 'bad'), 'test-decision')
    t.equal(error.status, 400)
    t.match(error.body, invalid, `${url}: error body`)
  }
  const { state } = begun(runtime, 'POST', '/bedrock/model/x/invoke', MAINLAND_CHINA)
  t.same(blockRefusal(state, { action: 'block', enforced: true, rule: null, reason: 'x' }).headers, { 'x-amzn-errortype': 'AccessDeniedException' }, 'Bedrock names the exception in a header')
  t.match(errorRefusal(null, new GatewayError('not_found', 'nothing here'), 'id').body, { error: { type: 'not_found', message: 'nothing here', decision_id: 'id' } }, 'without an upstream, the generic shape')
})

t.test('a refusal before any decision becomes the decision; after one, the decision stays', async (t) => {
  const runtime = await testRuntime()
  const { state } = begun(runtime, 'POST', '/anthropic/v1/messages', MAINLAND_CHINA)
  refusedBeforeDecision(state, new GatewayError('too_large', 'the request body is larger than server.body_limit'))
  t.same(state.decision, { action: 'block', enforced: true, rule: null, reason: 'the request body is larger than server.body_limit' })
  const allowed = begun(runtime, 'POST', '/anthropic/v1/messages', MAINLAND_CHINA).state
  allowed.decision = { action: 'allow', enforced: true, rule: 'r', reason: 'ok' }
  refusedBeforeDecision(allowed, new GatewayError('bad_gateway', 'the upstream could not be reached'))
  t.match(allowed.decision, { action: 'allow' })
})
