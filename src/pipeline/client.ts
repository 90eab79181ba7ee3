// Stage client: which configured client sends the request. With `clients:` configured every
// request needs a token the gateway knows (compared by sha256); the token is never forwarded.
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { GatewayError } from '../errors.js'
import { requestKey } from '../proxy/credentials.js'

/** The client's name; null when clients are not authenticated. A missing or unknown token is a 401. */
export function authenticateClient (clients: ReadonlyMap<string, string>, headers: IncomingHttpHeaders): string | null {
  if (clients.size === 0) return null
  const token = requestKey(headers)
  const name = token === null ? undefined : clients.get(createHash('sha256').update(token).digest('hex'))
  if (name === undefined) throw new GatewayError('unauthorized', 'a client token the gateway knows is required (Authorization: Bearer, x-api-key or api-key)')
  return name
}
