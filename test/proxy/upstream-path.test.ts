// The path below a mount is decoded once; every form servers read differently is refused.
import t from 'tap'
import { upstreamPath } from '../../src/proxy/upstream-path.js'

t.test('decoded once, segment by segment; forwarded as sent', async (t) => {
  const p = upstreamPath('/bedrock/model/anthropic.claude-v1%3A0/invoke?x=1', '/bedrock')
  t.same(p.segments, ['model', 'anthropic.claude-v1:0', 'invoke'])
  t.equal(p.path, '/model/anthropic.claude-v1%3A0/invoke')
  t.equal(p.query, '?x=1')
  t.equal(p.key, '/model/anthropic.claude-v1:0/invoke')
  t.same(p.encodedSlashes, [])
  t.equal(upstreamPath('/a/v1/m%65ssages/', '/a').key, '/v1/messages', 'an encoded letter is the letter; one trailing slash is ignored')
  t.equal(upstreamPath('/a/V1/Messages', '/a').key, '/v1/messages')
})

t.test('an encoded slash is recorded for the dialect to accept or refuse', async (t) => {
  const p = upstreamPath('/b/model/arn%3Aaws%3Abedrock%3A%3A1%3Aapplication-inference-profile%2Fabc/converse', '/b')
  t.same(p.encodedSlashes, [1])
  t.equal(p.segments[1], 'arn:aws:bedrock::1:application-inference-profile/abc')
})

t.test('ambiguous paths are refused with the reason', async (t) => {
  for (const [path, why] of [
    ['/a/v1//messages', /empty segment/],
    ['/a/v1/./messages', /dot segment/],
    ['/a/v1/x/../messages', /dot segment/],
    ['/a/v1/%2e%2e/messages', /dot segment/],
    ['/a/v1/%2E/messages', /dot segment/],
    ['/a/v1\\messages', /backslash/],
    ['/a/v1%5Cmessages', /encoded backslash/],
    ['/a/v1%252Fmessages', /percent-encoded twice/],
    ['/a/v1/model%25', /percent-encoded twice/],
    ['/a/v1/%zz', /not a valid escape/],
    ['/a/v1/%C3', /not a valid escape/],
    ['/a/v1/mes%00sages', /control characters/],
    ['/a/v1/mes%0asages', /control characters/],
  ] as const) {
    t.throws(() => upstreamPath(path, '/a'), { kind: 'invalid_request', message: why }, path)
  }
})
