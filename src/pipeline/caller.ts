// Stage caller: who is calling, and from where. The socket peer, or (from a trusted proxy) the
// forwarded address (geo/client-ip.ts); then its location through the revision's locator.
// An address that cannot be read is an unknown location with the reason why.
import type { IncomingHttpHeaders } from 'node:http'
import { resolveClientIp, type ClientAddress } from '../geo/client-ip.js'
import { UNKNOWN_ADDRESS, type Location } from '../geo/locator.js'
import type { Runtime } from '../runtime.js'

export interface Caller {
  client: ClientAddress
  location: Location
  /** Why the location is unknown (the address, or the lookup), for the reason text. */
  problem: string | undefined
}

export function findCaller (runtime: Runtime, peer: string | undefined, headers: IncomingHttpHeaders): Caller {
  const client = resolveClientIp(peer, headers, runtime.clientIp)
  const location = client.ip === null ? UNKNOWN_ADDRESS : runtime.locator.locate(client.ip)
  return { client, location, problem: client.problem ?? location.reason }
}
