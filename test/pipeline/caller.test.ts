// Stage caller, on its own: which address is the caller's, where it was read, and where it is.
import t from 'tap'
import { findCaller } from '../../src/pipeline/caller.js'
import { MAINLAND_CHINA, UNITED_STATES, testRuntime } from '../support/runtime.js'

t.test('the caller and its location, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<[string, string | undefined, Record<string, string>, { ip: string | null, source: string, country: string | null, problem?: RegExp }]> = [
    ['a direct peer is the caller', UNITED_STATES, { 'x-forwarded-for': MAINLAND_CHINA }, { ip: UNITED_STATES, source: 'socket', country: 'US' }],
    ['a trusted proxy\'s X-Forwarded-For names the caller', '127.0.0.1', { 'x-forwarded-for': MAINLAND_CHINA }, { ip: MAINLAND_CHINA, source: 'x-forwarded-for', country: 'CN' }],
    ['a mapped IPv4 peer is canonical', `::ffff:${UNITED_STATES}`, {}, { ip: UNITED_STATES, source: 'socket', country: 'US' }],
    ['the trusted proxy itself, without a header, is a special-purpose address', '127.0.0.1', {}, { ip: '127.0.0.1', source: 'socket', country: null, problem: /special-purpose/ }],
    ['a forwarded entry that is not an address is an unknown location', '127.0.0.1', { 'x-forwarded-for': 'unknown' }, { ip: null, source: 'x-forwarded-for', country: null, problem: /./ }],
    ['no peer address at all', undefined, {}, { ip: null, source: 'socket', country: null, problem: /cannot be read/ }],
  ]
  for (const [name, peer, headers, want] of rows) {
    const caller = findCaller(runtime, peer, headers)
    t.equal(caller.client.ip, want.ip, `${name}: address`)
    t.equal(caller.client.source, want.source, `${name}: source`)
    t.equal(caller.location.country, want.country, `${name}: country`)
    if (want.problem === undefined) t.equal(caller.problem, undefined, `${name}: no problem`)
    else t.match(caller.problem, want.problem, `${name}: why the location is unknown`)
  }
})
