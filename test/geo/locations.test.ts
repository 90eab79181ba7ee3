// Networks, City subdivisions and Anonymous IP flags, on real mmdb files.
import t from 'tap'
import { openDatabase } from '../../src/geo/databases.js'
import { Locator } from '../../src/geo/locator.js'
import { parseCidr } from '../../src/geo/address.js'
import { ANONYMOUS_IP, MAXMIND_CITY, MAXMIND_COUNTRY, fixtureDir, writeMmdb } from '../support/fixtures.js'

const dir = fixtureDir()
const city = writeMmdb(dir, 'GeoIP2-City.mmdb', MAXMIND_CITY, 'GeoIP2-City')
const country = writeMmdb(dir, 'GeoLite2-Country.mmdb', MAXMIND_COUNTRY, 'GeoLite2-Country')
const anonymous = writeMmdb(dir, 'GeoIP2-Anonymous-IP.mmdb', ANONYMOUS_IP, 'GeoIP2-Anonymous-IP')
const cache = { maxEntries: 100, ttlMs: 0 }
const net = (name: string, cidr: string, c: string, subdivision: string | null = null): { name: string, cidr: [string, number], country: string, subdivision: string | null } =>
  ({ name, cidr: parseCidr(cidr) ?? ['0.0.0.0', 0], country: c, subdivision })

t.test('networks take precedence over databases and special-purpose ranges; the longest prefix wins', async (t) => {
  const locator = new Locator([await openDatabase(country)], cache, {
    networks: [
      net('hk-office', '10.20.0.0/16', 'HK'),
      net('hk-singapore-desk', '10.20.99.0/24', 'SG'),
      net('uk-range', '81.2.0.0/16', 'IE'),
      net('v6-office', 'fd00:20::/32', 'HK'),
      net('crimea-branch', '10.43.0.0/16', 'UA', 'UA-43'),
    ],
  })
  t.match(locator.locate('10.20.1.1'), { country: 'HK', source: 'network', network: 'hk-office' }, 'a private office range')
  t.match(locator.locate('10.20.99.7'), { country: 'SG', network: 'hk-singapore-desk' }, 'longest prefix')
  t.match(locator.locate('81.2.69.160'), { country: 'IE', network: 'uk-range' }, 'before the database (which says GB)')
  t.match(locator.locate('fd00:20::9'), { country: 'HK', network: 'v6-office' })
  t.match(locator.locate('10.43.0.1'), { country: 'UA', subdivisions: ['UA-43'] })
  t.match(locator.locate('10.21.0.1'), { country: null, source: 'none', reason: 'special-purpose address' }, 'outside every network')
})

t.test('a City database gives ISO 3166-2 subdivisions', async (t) => {
  const db = await openDatabase(city)
  t.equal(db.hasSubdivisions, true)
  t.equal((await openDatabase(country)).hasSubdivisions, false)
  const locator = new Locator([db], cache)
  t.match(locator.locate('176.104.32.9'), { country: 'UA', subdivisions: ['UA-43'] })
  t.match(locator.locate('176.104.34.9'), { country: 'UA', subdivisions: [] })
  t.match(locator.locate('2.125.160.216'), { country: 'GB', registeredCountry: 'RU', subdivisions: ['GB-ENG', 'GB-WBK'] })
})

t.test('an Anonymous IP database adds the flags that are true', async (t) => {
  const locator = new Locator([await openDatabase(city), await openDatabase(country)], cache, { anonymous: await openDatabase(anonymous, 'anonymous') })
  t.match(locator.locate('81.2.69.160'), { country: 'GB', anonymous: ['is_anonymous', 'is_anonymous_vpn'] })
  t.match(locator.locate('176.104.33.5'), { country: 'UA', anonymous: ['is_anonymous', 'is_public_proxy', 'is_tor_exit_node'] })
  t.match(locator.locate('8.8.8.8'), { country: 'US', anonymous: [] }, 'a record {} is not anonymous')
  t.match(locator.locate('175.16.199.1'), { country: 'CN', anonymous: [] }, 'no record is not anonymous')
})

t.test('each database must be of its kind', async (t) => {
  const asAnonymous = await openDatabase(country, 'anonymous').then(() => null, (e: unknown) => e as Error)
  t.match(asAnonymous?.message, /not an Anonymous IP database/)
  const asLocation = await openDatabase(anonymous, 'location').then(() => null, (e: unknown) => e as Error)
  t.match(asLocation?.message, /not a country database/)
})
