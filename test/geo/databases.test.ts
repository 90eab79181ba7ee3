// Real .mmdb files of both record schemas, read through the maxmind reader and the LRU.
import { gzipSync } from 'node:zlib'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DatabaseError, openDatabase } from '../../src/geo/databases.js'
import { Locator } from '../../src/geo/locator.js'
import { ASN, FLAT_COUNTRY, MAXMIND_COUNTRY, fixtureDir, writeMmdb } from '../support/fixtures.js'

const dir = fixtureDir()
const maxmindFile = writeMmdb(dir, 'GeoLite2-Country.mmdb', MAXMIND_COUNTRY, 'GeoLite2-Country')
const flatFile = writeMmdb(dir, 'flat-country.mmdb', FLAT_COUNTRY, 'country ipvAll')
const cache = { maxEntries: 1000, ttlMs: 60_000 }

t.test('the MaxMind schema: country.iso_code, with registered_country kept', async (t) => {
  const locator = new Locator([await openDatabase(maxmindFile)], cache)
  t.match(locator.locate('81.2.69.160'), { country: 'GB', registeredCountry: 'GB', source: 'geoip', database: maxmindFile })
  t.match(locator.locate('175.16.199.1'), { country: 'CN', registeredCountry: 'CN' })
  t.match(locator.locate('2.125.160.216'), { country: 'GB', registeredCountry: 'RU' }, 'country and registered country differ')
  t.match(locator.locate('2001:480::1'), { country: 'US' }, 'IPv6')
})

t.test('a record without a country is an unknown location, whatever else it holds', async (t) => {
  const locator = new Locator([await openDatabase(maxmindFile)], cache)
  t.match(locator.locate('67.43.156.1'), { country: null, registeredCountry: 'BT', source: 'geoip', reason: 'only a registered country' })
  t.match(locator.locate('89.160.20.1'), { country: null, source: 'none', reason: 'not in any database' }, 'a continent only')
  t.match(locator.locate('5.5.5.5'), { country: null, reason: 'not in any database' }, 'the EU pseudo-code is not a country')
  t.match(locator.locate('9.9.9.9'), { country: null, source: 'none', reason: 'not in any database' })
})

t.test('special-purpose addresses are unknown even where a database names a country', async (t) => {
  const locator = new Locator([await openDatabase(maxmindFile)], cache)
  for (const ip of ['10.1.2.3', '127.0.0.1', '100.64.1.1', '192.168.1.1', '169.254.1.1', '192.0.2.1', '224.0.0.1', '::1', 'fe80::1', 'fc00::1', '2001:db8::1']) {
    t.match(locator.locate(ip), { country: null, source: 'none', reason: 'special-purpose address' }, ip)
  }
})

t.test('the flat ip-location-db schema, and several databases asked in order', async (t) => {
  const locator = new Locator([await openDatabase(flatFile), await openDatabase(maxmindFile)], cache)
  t.match(locator.locate('1.0.0.1'), { country: 'AU', registeredCountry: null, database: flatFile })
  t.match(locator.locate('175.16.199.1'), { country: 'CN', database: maxmindFile }, 'the second database answers what the first does not know')
  t.match(locator.locate('203.0.113.5'), { country: null, reason: 'special-purpose address' }, 'documentation range, though the file names JP')
})

t.test('the cache answers repeated callers without the database', async (t) => {
  const locator = new Locator([await openDatabase(maxmindFile)], cache)
  locator.locate('81.2.69.160')
  locator.locate('81.2.69.160')
  locator.locate('81.2.69.161')
  t.same(locator.stats, { hits: 1, misses: 2, lookupErrors: 0 })
  t.equal(locator.cacheSize, 2)
  const bounded = new Locator([await openDatabase(maxmindFile)], { maxEntries: 2, ttlMs: 0 })
  for (const ip of ['81.2.69.1', '81.2.69.2', '81.2.69.3', '81.2.69.4']) bounded.locate(ip)
  t.equal(bounded.cacheSize, 2, 'bounded by max_entries')
})

t.test('a database that cannot serve is refused with the file and the reason', async (t) => {
  const bytes = readFileSync(maxmindFile)
  const cases: Array<[string, Buffer | null, RegExp]> = [
    ['missing.mmdb', null, /missing\.mmdb: no such file/],
    ['empty.mmdb', Buffer.alloc(0), /not a readable MaxMind database/],
    ['truncated.mmdb', bytes.subarray(0, Math.floor(bytes.length / 2)), /not a readable MaxMind database/],
    ['garbage.mmdb', Buffer.from('this is not a database'.repeat(100)), /not a readable MaxMind database/],
    ['gzipped.mmdb', gzipSync(bytes), /gzip/],
    ['asn.mmdb', null, /not a country database/],
  ]
  writeMmdb(dir, 'asn.mmdb', ASN, 'GeoLite2-ASN')
  for (const [name, content, reason] of cases) {
    const file = join(dir, name)
    if (content !== null) writeFileSync(file, content)
    const err = await openDatabase(file).then(() => null, (e: unknown) => e)
    t.ok(err instanceof DatabaseError, name)
    t.match((err as Error).message, reason, name)
    t.ok((err as Error).message.startsWith(file), `${name}: the message names the file`)
  }
})

t.test('a corrupt search tree is caught by the probe lookups', async (t) => {
  const bytes = Buffer.from(readFileSync(maxmindFile))
  // Point every record of the tree far outside the file.
  const nodeCount = bytes.indexOf(Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'))
  for (let i = 0; i + 4 <= 64 && i < nodeCount; i += 4) bytes.writeUInt32BE(0x7fffffff, i)
  const file = join(dir, 'corrupt.mmdb')
  writeFileSync(file, bytes)
  const err = await openDatabase(file).then(() => null, (e: unknown) => e)
  t.match((err as Error | null)?.message, /corrupt|not a readable/)
})
