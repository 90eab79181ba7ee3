// Fixture databases in both record schemas, written to a temporary directory as real files.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildMmdb, type MmdbEntry } from './mmdb-writer.js'

const country = (iso: string, registered = iso): MmdbEntry['data'] => ({
  continent: { code: 'AS', geoname_id: 6255147, names: { en: 'Asia' } },
  country: { geoname_id: 1, iso_code: iso, names: { en: iso } },
  registered_country: { geoname_id: 2, iso_code: registered, names: { en: registered } },
})

/** MaxMind GeoIP2/GeoLite2 Country schema. */
export const MAXMIND_COUNTRY: MmdbEntry[] = [
  { cidr: '81.2.69.0/24', data: { ...country('GB'), country: { iso_code: 'GB', is_in_european_union: false, names: { en: 'United Kingdom' } } } },
  { cidr: '175.16.199.0/24', data: country('CN') },
  { cidr: '2.125.160.0/24', data: country('GB', 'RU') },
  // Only a registered country (as MaxMind ships for some anonymous and satellite ranges).
  { cidr: '67.43.156.0/24', data: { registered_country: { iso_code: 'BT', names: { en: 'Bhutan' } }, traits: { is_anonymous_proxy: true } } },
  // Only a continent.
  { cidr: '89.160.20.0/24', data: { continent: { code: 'EU', names: { en: 'Europe' } } } },
  // An old pseudo-country code.
  { cidr: '5.5.5.0/24', data: { country: { iso_code: 'EU' } } },
  // A database that names a country for a private range: must be ignored.
  { cidr: '10.0.0.0/8', data: country('US') },
  { cidr: '2001:480::/32', data: country('US') },
  { cidr: '8.8.8.0/24', data: country('US') },
]

/** ip-location-db flat schema. */
export const FLAT_COUNTRY: MmdbEntry[] = [
  { cidr: '81.2.69.0/24', data: { country_code: 'GB' } },
  { cidr: '203.0.113.0/24', data: { country_code: 'JP' } },
  { cidr: '1.0.0.0/24', data: { country_code: 'AU' } },
]

export const ASN: MmdbEntry[] = [
  { cidr: '8.8.8.0/24', data: { autonomous_system_number: 15169, autonomous_system_organization: 'GOOGLE' } },
]

export function fixtureDir (): string {
  return mkdtempSync(join(tmpdir(), 'geofence-mmdb-'))
}

export function writeMmdb (dir: string, name: string, entries: MmdbEntry[], databaseType: string): string {
  const file = join(dir, name)
  writeFileSync(file, buildMmdb(entries, { databaseType }))
  return file
}

/** MaxMind GeoIP2 City schema, with subdivisions. */
export const MAXMIND_CITY: MmdbEntry[] = [
  { cidr: '176.104.32.0/24', data: { ...country('UA'), subdivisions: [{ iso_code: '43', names: { en: 'Crimea' } }], city: { names: { en: 'Simferopol' } } } },
  { cidr: '176.104.33.0/24', data: { ...country('UA'), subdivisions: [{ iso_code: '30', names: { en: 'Kyiv City' } }] } },
  { cidr: '176.104.34.0/24', data: country('UA') },
  { cidr: '2.125.160.0/24', data: { ...country('GB', 'RU'), subdivisions: [{ iso_code: 'ENG' }, { iso_code: 'WBK' }] } },
]

/** MaxMind GeoIP2 Anonymous IP schema: flags only, each present only when true. */
export const ANONYMOUS_IP: MmdbEntry[] = [
  { cidr: '81.2.69.0/24', data: { is_anonymous: true, is_anonymous_vpn: true } },
  { cidr: '176.104.33.0/24', data: { is_anonymous: true, is_tor_exit_node: true, is_public_proxy: true } },
  { cidr: '8.8.8.0/24', data: {} },
]
