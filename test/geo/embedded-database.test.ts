// The embedded default database (@ip-location-db/geo-whois-asn-country-mmdb): the addresses
// other tests rely on resolve to the countries they assume.
import t from 'tap'
import { DEFAULT_DATABASE, openDatabase } from '../../src/geo/databases.js'
import { Locator } from '../../src/geo/locator.js'

t.test('addresses used across the suite resolve as assumed', async (t) => {
  const db = await openDatabase(DEFAULT_DATABASE)
  t.match(db.type, /country/)
  const locator = new Locator([db], { maxEntries: 100, ttlMs: 0 })
  const expected: Record<string, string> = {
    '203.198.0.1': 'HK', // PCCW / HKT
    '114.114.114.114': 'CN',
    '202.175.3.1': 'MO',
    '77.88.8.8': 'RU',
    '2a02:6b8::1': 'RU',
    '8.8.8.8': 'US',
    '2001:4860:4860::8888': 'US',
    '81.2.69.142': 'GB',
    '1.1.1.1': 'AU',
  }
  for (const [ip, country] of Object.entries(expected)) {
    t.match(locator.locate(ip), { country, source: 'geoip', registeredCountry: null }, `${ip} is ${country}`)
  }
})
