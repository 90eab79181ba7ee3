// The demo databases behind config/hong-kong-bank.yaml: tiny GeoIP2-City and Anonymous IP
// files with FICTITIOUS assignments of a few public address blocks, so that the example's
// policy tests can show subdivisions and VPN/Tor handling without a MaxMind licence. They are
// built here, committed under geoip-data/demo/, and test/examples.test.ts checks that the
// committed files are exactly what this builds. Regenerate: npm run demo-data
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildMmdb, type MmdbEntry } from './mmdb-writer.js'

const ukraine = (subdivision: string, name: string): MmdbEntry['data'] => ({
  continent: { code: 'EU', names: { en: 'Europe' } },
  country: { iso_code: 'UA', names: { en: 'Ukraine' } },
  registered_country: { iso_code: 'UA', names: { en: 'Ukraine' } },
  subdivisions: [{ iso_code: subdivision, names: { en: name } }],
})

export const DEMO_CITY: MmdbEntry[] = [
  { cidr: '91.207.56.0/24', data: ukraine('43', 'Crimea') },
  { cidr: '91.198.22.0/24', data: ukraine('30', 'Kyiv City') },
]

export const DEMO_ANONYMOUS: MmdbEntry[] = [
  { cidr: '185.220.101.0/24', data: { is_anonymous: true, is_public_proxy: true, is_tor_exit_node: true } },
  { cidr: '146.70.10.0/24', data: { is_anonymous: true, is_anonymous_vpn: true, is_hosting_provider: true } },
]

export const DEMO_DIR = fileURLToPath(new URL('../../geoip-data/demo/', import.meta.url))

export function demoFiles (): Record<string, Buffer> {
  return {
    'city-demo.mmdb': buildMmdb(DEMO_CITY, { databaseType: 'GeoIP2-City', description: 'llm-geofence DEMO data: fictitious, not for production' }),
    'anonymous-ip-demo.mmdb': buildMmdb(DEMO_ANONYMOUS, { databaseType: 'GeoIP2-Anonymous-IP', description: 'llm-geofence DEMO data: fictitious, not for production' }),
  }
}

if (process.argv.includes('--write')) {
  for (const [name, bytes] of Object.entries(demoFiles())) writeFileSync(join(DEMO_DIR, name), bytes)
}
