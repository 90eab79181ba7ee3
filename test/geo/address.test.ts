import t from 'tap'
import { AddressSet, canonicalAddress, isSpecialPurpose, parseCidr } from '../../src/geo/address.js'

t.test('addresses are canonicalised before trust checks, lookup and caching', async (t) => {
  const cases: Record<string, string | null> = {
    '1.2.3.4': '1.2.3.4',
    ' 1.2.3.4 ': '1.2.3.4',
    '1.2.3.4:8080': '1.2.3.4',
    '::ffff:1.2.3.4': '1.2.3.4',
    '::FFFF:0102:0304': '1.2.3.4',
    '0:0:0:0:0:ffff:1.2.3.4': '1.2.3.4',
    '[2001:DB8::1]:443': '2001:db8::1',
    '[::ffff:8.8.8.8]': '8.8.8.8',
    'fe80::1%eth0': 'fe80::1',
    '2001:0db8:0000:0000:0000:0000:0000:0001': '2001:db8::1',
    '1:0:0:2:0:0:0:3': '1:0:0:2::3',
    '2a02:6b8::1': '2a02:6b8::1',
    '': null,
    'unknown': null,
    '_hidden': null,
    '1.2.3': null,
    '01.2.3.4': null,
    '1.2.3.4:port': null,
    '[1.2.3.4]': null,
    '[::1': null,
    '256.1.1.1': null,
    '1::2::3': null,
  }
  for (const [input, want] of Object.entries(cases)) t.equal(canonicalAddress(input), want, JSON.stringify(input))
})

t.test('special-purpose ranges (IANA registries) are recognised; public ones are not', async (t) => {
  for (const ip of ['0.1.2.3', '10.0.0.1', '100.64.0.1', '127.0.0.1', '169.254.0.1', '172.16.0.1', '192.0.0.8', '192.0.2.1',
    '192.168.0.1', '198.18.0.1', '198.51.100.1', '203.0.113.1', '224.0.0.1', '240.0.0.1', '255.255.255.255',
    '::', '::1', 'fe80::1', 'fc00::1', 'fd12::1', 'ff02::1', '2001:db8::1', '2002::1', '2001::1', '64:ff9b::1', '3fff::1']) {
    t.ok(isSpecialPurpose(canonicalAddress(ip) ?? ''), ip)
  }
  for (const ip of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '2001:4860:4860::8888', '2a02:6b8::1', '2400:cb00::1']) {
    t.notOk(isSpecialPurpose(canonicalAddress(ip) ?? ''), ip)
  }
})

t.test('CIDRs, and address sets that keep the families apart', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), ['10.0.0.0', 8])
  t.same(parseCidr('192.0.2.7'), ['192.0.2.7', 32])
  t.same(parseCidr('::1/128'), ['::1', 128])
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/8', 'ten/8', '1.2.3.4:80/32', '[::1]/128', '::1/129', 'fe80::1%eth0/64']) {
    t.equal(parseCidr(bad), null, bad)
  }
  const set = new AddressSet(['10.0.0.0/8', '::/3'])
  t.ok(set.has('10.9.8.7'))
  t.ok(set.has('::1'))
  t.notOk(set.has('8.8.8.8'), 'an IPv6 range does not hold IPv4 addresses through their mapped form')
})
