// How a failure to reach an upstream (or to hear back in time) is answered, said once for
// every transport: a timeout is a 504, anything else a 502, each in the dialect's shape.
import { GatewayError } from '../errors.js'

export function upstreamError (error: unknown): GatewayError {
  if (error instanceof GatewayError) return error
  const e = error as { statusCode?: number, code?: string } | null
  return e?.statusCode === 504 || e?.code === 'UND_ERR_CONNECT_TIMEOUT'
    ? new GatewayError('gateway_timeout', 'the upstream did not answer in time', { cause: error })
    : new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: error })
}
