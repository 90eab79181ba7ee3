import t from 'tap'
import { AddressSet } from '../../src/geo/address.js'
import { forwardedFor, resolveClientIp } from '../../src/geo/client-ip.js'

const opts = { trusted: new AddressSet(['10.0.0.0/8', '127.0.0.1/32']), headers: ['x-forwarded-for', 'forwarded'] as const }

t.test('the socket peer, unless it is trusted', async (t) => {
  t.same(resolveClientIp('8.8.8.8', { 'x-forwarded-for': '1.1.1.1' }, opts), { ip: '8.8.8.8', source: 'socket' })
  t.same(resolveClientIp('::ffff:10.0.0.1', { 'x-forwarded-for': '1.1.1.1' }, opts), { ip: '1.1.1.1', source: 'x-forwarded-for' })
  t.same(resolveClientIp('10.0.0.1', {}, opts), { ip: '10.0.0.1', source: 'socket' }, 'no header: the proxy itself')
  t.match(resolveClientIp(undefined, {}, opts), { ip: null, source: 'socket' }, 'a socket with no peer address')
})

t.test('X-Forwarded-For from the right, skipping trusted hops only', async (t) => {
  const h = (xff: string): ReturnType<typeof resolveClientIp> => resolveClientIp('10.0.0.1', { 'x-forwarded-for': xff }, opts)
  t.equal(h('6.6.6.6, 1.1.1.1').ip, '1.1.1.1', 'a client-written left part is not believed')
  t.equal(h('1.1.1.1, 10.2.2.2, 10.3.3.3').ip, '1.1.1.1')
  t.equal(h('10.2.2.2, 10.3.3.3').ip, '10.2.2.2', 'every hop trusted: the leftmost')
  t.equal(h('[2001:db8::1]:1234').ip, '2001:db8::1')
  t.equal(h('1.1.1.1:5555').ip, '1.1.1.1')
  t.match(h('1.1.1.1, garbage'), { ip: null, problem: /not an IP address/ })
  t.match(h('garbage, 1.1.1.1'), { ip: '1.1.1.1' }, 'garbage left of the first untrusted hop is never reached')
  t.match(h(''), { ip: null })
})

t.test('RFC 7239 Forwarded', async (t) => {
  t.same(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43'), ['192.0.2.60'])
  t.same(forwardedFor('for="[2001:db8:cafe::17]:4711"'), ['[2001:db8:cafe::17]:4711'])
  t.same(forwardedFor('For=192.0.2.43, for=198.51.100.17'), ['192.0.2.43', '198.51.100.17'])
  t.same(forwardedFor('proto=https, for=1.1.1.1'), [null, '1.1.1.1'], 'an element without for=')
  t.match(forwardedFor('for=1.1.1.1;for=2.2.2.2'), { problem: /named twice/ }, 'a repeated for= is unreadable')
  t.match(forwardedFor('for="1.1.1.1'), { problem: /unterminated quoted-string/ }, 'an unterminated quote')
  t.equal(resolveClientIp('10.0.0.1', { forwarded: 'for=1.1.1.1, for=10.0.0.9' }, opts).ip, '1.1.1.1')
  t.match(resolveClientIp('10.0.0.1', { forwarded: 'for=1.1.1.1, proto=https' }, opts), { ip: null }, 'a hop that hides its client stops the walk')
})

t.test('only the configured headers are read', async (t) => {
  const xffOnly = { ...opts, headers: ['x-forwarded-for'] as const }
  t.equal(resolveClientIp('10.0.0.1', { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '1.1.1.1' }, xffOnly).ip, '1.1.1.1')
  t.match(resolveClientIp('10.0.0.1', { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '1.1.1.1' }, opts), { ip: null, problem: /different callers/ })
})

// One row per trick. `hops` is what forwardedFor reads (or the problem it reports); `caller` is
// what a trusted peer's request resolves to (null: the location is unknown).
const FORWARDED_ROWS: Array<{ name: string, header: string, hops: Array<string | null> | RegExp, caller: string | null }> = [
  // A client plants an unterminated quote; the trusted proxy appends its element after it.
  { name: 'planted quote, proxy appends for=IP', header: 'for=8.8.8.8;x=", for=1.2.3.4', hops: /unterminated quoted-string at offset 14/, caller: null },
  { name: 'planted quote, proxy appends a quoted for="IP:port"', header: 'for=8.8.8.8;x=", for="1.2.3.4:4711"', hops: /cannot follow an element at offset 22/, caller: null },
  { name: 'planted quote, proxy appends for="IP:port";proto=', header: 'for=8.8.8.8;x=", for="1.2.3.4:4711";proto=https', hops: /cannot follow an element at offset 22/, caller: null },
  { name: 'planted quote, proxy appends a quoted IPv6', header: 'for=8.8.8.8;x=", for="[2001:db8::1]"', hops: /cannot follow an element/, caller: null },
  { name: 'planted quote, then two proxies', header: 'for=8.8.8.8;x=", for="1.2.3.4:4711", for=10.0.0.7', hops: /cannot follow an element/, caller: null },
  { name: 'planted escaped quote keeps the string open', header: 'for=8.8.8.8;x="\\", for=1.2.3.4', hops: /unterminated quoted-string/, caller: null },
  { name: 'a backslash at the very end', header: 'for="1.2.3.4\\', hops: /unterminated quoted-string/, caller: null },
  // Commas and semicolons inside a quoted-string are part of the value.
  { name: 'quoted comma in for=', header: 'for="1.1.1.1, for=2.2.2.2"', hops: ['1.1.1.1, for=2.2.2.2'], caller: null },
  { name: 'quoted semicolon in for=', header: 'for="1.1.1.1;by=2.2.2.2"', hops: ['1.1.1.1;by=2.2.2.2'], caller: null },
  { name: 'quoted comma in another parameter', header: 'by="a,for=6.6.6.6";for=1.1.1.1', hops: ['1.1.1.1'], caller: '1.1.1.1' },
  { name: 'quoted separators in the proxy element', header: 'for=6.6.6.6, for=1.1.1.1;host="x;y,z"', hops: ['6.6.6.6', '1.1.1.1'], caller: '1.1.1.1' },
  // quoted-pair escapes
  { name: 'escaped quote inside a value', header: 'for=1.1.1.1;ext="a\\"b"', hops: ['1.1.1.1'], caller: '1.1.1.1' },
  { name: 'escaped characters are unescaped', header: 'for="\\1.1.1.\\1"', hops: ['1.1.1.1'], caller: '1.1.1.1' },
  { name: 'an escaped control character', header: 'for="1.1.1.1\\\u0001"', hops: /not allowed in a quoted-string at offset 13/, caller: null },
  { name: 'a control character in a quoted-string', header: 'for="1.1.1.1\u0000"', hops: /not allowed in a quoted-string/, caller: null },
  // whitespace: optional around commas, nowhere else
  { name: 'spaces and tabs around commas', header: ' for=6.6.6.6 ,\tfor=1.1.1.1 ', hops: ['6.6.6.6', '1.1.1.1'], caller: '1.1.1.1' },
  { name: 'a space before ";"', header: 'for=1.1.1.1 ;proto=https', hops: /cannot follow an element at offset 12/, caller: null },
  { name: 'a space after ";"', header: 'for=1.1.1.1; proto=https', hops: /cannot follow an element/, caller: null },
  { name: 'a space before "="', header: 'for =1.1.1.1', hops: /without "="/, caller: null },
  { name: 'a space after "="', header: 'for= 1.1.1.1', hops: /neither a token nor a quoted-string/, caller: null },
  // addresses as RFC 7239 section 6 writes them
  { name: 'a quoted IPv6 with a port', header: 'for="[2001:db8::1]:4711"', hops: ['[2001:db8::1]:4711'], caller: '2001:db8::1' },
  { name: 'an unquoted IPv6 (":" is not a token character)', header: 'for=[2001:db8::1]', hops: /neither a token nor a quoted-string at offset 4/, caller: null },
  { name: 'an unquoted port', header: 'for=1.1.1.1:4711', hops: /cannot follow an element/, caller: null },
  { name: 'an obfuscated identifier', header: 'for=_hidden', hops: ['_hidden'], caller: null },
  { name: 'unknown', header: 'for=unknown', hops: ['unknown'], caller: null },
  { name: 'an obfuscated identifier left of the caller is never reached', header: 'for=_hidden, for=1.1.1.1', hops: ['_hidden', '1.1.1.1'], caller: '1.1.1.1' },
  // junk, bad tokens, pairs without "=", repeated parameters: the whole chain, however far left
  { name: 'junk between elements', header: 'for=6.6.6.6 junk, for=1.1.1.1', hops: /cannot follow an element at offset 12/, caller: null },
  { name: 'a quoted-string glued to a value', header: 'for=6.6.6.6"x", for=1.1.1.1', hops: /cannot follow an element/, caller: null },
  { name: 'a bad token', header: 'f@r=6.6.6.6, for=1.1.1.1', hops: /without "="/, caller: null },
  { name: 'a non-ASCII token', header: 'for=1.1.1.1, f\u00f6r=2.2.2.2', hops: /without "=" at offset 14/, caller: null },
  { name: 'a pair without "="', header: 'proto, for=1.1.1.1', hops: /without "=" at offset 5/, caller: null },
  { name: 'an empty value', header: 'for=, for=1.1.1.1', hops: /neither a token nor a quoted-string/, caller: null },
  { name: 'for= twice in one element, far left', header: 'for=6.6.6.6;for=7.7.7.7, for=1.1.1.1', hops: /named twice in one element at offset 12/, caller: null },
  { name: 'for= twice, differently cased', header: 'for=1.1.1.1;FOR=2.2.2.2', hops: /named twice/, caller: null },
  { name: 'another parameter twice', header: 'for=1.1.1.1;proto=http;proto=https', hops: /named twice/, caller: null },
  // what the grammar allows
  { name: 'empty pairs and elements', header: ';;for=1.1.1.1;, for=2.2.2.2', hops: ['1.1.1.1', '2.2.2.2'], caller: '2.2.2.2' },
  { name: 'an empty element on the right stops the walk', header: 'for=1.1.1.1,', hops: ['1.1.1.1', null], caller: null },
  { name: 'an empty quoted-string', header: 'for=""', hops: [''], caller: null },
]

t.test('Forwarded is parsed strictly (RFC 7239): one row per trick', async (t) => {
  for (const row of FORWARDED_ROWS) {
    const hops = forwardedFor(row.header)
    const resolved = resolveClientIp('10.0.0.1', { forwarded: row.header }, opts)
    if (row.hops instanceof RegExp) {
      t.match(hops, { problem: row.hops }, `${row.name}: read`)
      t.same(resolved, { ip: null, source: 'forwarded', problem: (hops as { problem: string }).problem }, `${row.name}: the caller is unknown, with the parse problem`)
    } else {
      t.same(hops, row.hops, `${row.name}: read`)
      t.equal(resolved.ip, row.caller, `${row.name}: caller`)
      if (row.caller === null) t.match(resolved, { problem: /not an IP address/ }, `${row.name}: why`)
    }
  }
})

t.test('an unreadable Forwarded is not outvoted by X-Forwarded-For', async (t) => {
  const both = { forwarded: 'for=8.8.8.8;x=", for=1.2.3.4', 'x-forwarded-for': '1.2.3.4' }
  t.match(resolveClientIp('10.0.0.1', both, opts), { ip: null, source: 'forwarded', problem: /unterminated quoted-string/ })
  const forwardedFirst = { ...opts, headers: ['forwarded', 'x-forwarded-for'] as const }
  t.match(resolveClientIp('10.0.0.1', both, forwardedFirst), { ip: null, source: 'forwarded', problem: /unterminated quoted-string/ })
  t.match(resolveClientIp('8.8.4.4', both, opts), { ip: '8.8.4.4', source: 'socket' }, 'from an untrusted peer, neither header is read')
})
