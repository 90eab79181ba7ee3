import t from 'tap'
import { AddressSet, canonicalAddress, isSpecialPurpose, parseCidr, truncateAddress } from '../../src/geo/address.js'

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

t.test('the deprecated IPv4-compatible form is not read as IPv4-mapped', async (t) => {
  // ipaddr.js alone reads `::a.b.c.d` as `::ffff:a.b.c.d`; RFC 4291 2.5.5.1 (and Node) say ::0a0b:0c0d.
  t.equal(canonicalAddress('::1.2.3.4'), '::102:304')
  t.equal(canonicalAddress('[::10.0.0.1]:80'), '::a00:1')
  t.notOk(new AddressSet(['10.0.0.0/8']).has(canonicalAddress('::10.0.0.1') ?? ''), 'not a trusted 10/8 hop')
  t.ok(isSpecialPurpose(canonicalAddress('::8.8.8.8') ?? ''), 'inside ::/3, not 8.8.8.8')
  t.equal(canonicalAddress('::ffff:0:1.2.3.4'), '::ffff:0:102:304', 'RFC 6145 translated, not mapped')
})

t.test('truncated addresses keep only the network part', async (t) => {
  t.equal(truncateAddress('203.198.0.77', 24, 48), '203.198.0.0/24')
  t.equal(truncateAddress('203.198.0.77', 0, 48), '0.0.0.0/0')
  t.equal(truncateAddress('2a02:6b8:abcd:1234::1', 24, 48), '2a02:6b8:abcd::/48')
  t.equal(truncateAddress('2a02:6b8:abcd:1234::1', 24, 52), '2a02:6b8:abcd:1000::/52')
})
