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
  t.same(forwardedFor('for=1.1.1.1;for=2.2.2.2'), [''], 'a repeated for= is unreadable')
  t.same(forwardedFor('for="1.1.1.1'), [null], 'an unterminated quote')
  t.equal(resolveClientIp('10.0.0.1', { forwarded: 'for=1.1.1.1, for=10.0.0.9' }, opts).ip, '1.1.1.1')
  t.match(resolveClientIp('10.0.0.1', { forwarded: 'for=1.1.1.1, proto=https' }, opts), { ip: null }, 'a hop that hides its client stops the walk')
})

t.test('only the configured headers are read', async (t) => {
  const xffOnly = { ...opts, headers: ['x-forwarded-for'] as const }
  t.equal(resolveClientIp('10.0.0.1', { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '1.1.1.1' }, xffOnly).ip, '1.1.1.1')
  t.match(resolveClientIp('10.0.0.1', { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '1.1.1.1' }, opts), { ip: null, problem: /different callers/ })
})
