// How a failure to reach an upstream (or to hear back in time) is answered, said once for
// every transport: a timeout is a 504, anything else a 502, each in the dialect's shape. The
// reason says which hop failed: the egress proxy (unreachable, refused the tunnel, or too
// slow), the upstream's certificate, or the upstream itself. It names no address or credential.
import { GatewayError } from '../errors.js'
import { EgressProxyError } from './egress.js'

/** Errors of a certificate the gateway did not accept (OpenSSL's verify codes, as Node names them). */
const CERTIFICATE = /^(?:ERR_TLS_CERT_ALTNAME_INVALID|CERT_.*|.*_CERT_.*|UNABLE_TO_.*|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)$/

export function upstreamError (error: unknown): GatewayError {
  if (error instanceof GatewayError) return error
  const proxy = causes(error).find((e): e is EgressProxyError => e instanceof EgressProxyError)
  if (proxy !== undefined) {
    if (proxy.reason === 'timeout') return new GatewayError('gateway_timeout', 'the egress proxy did not open a tunnel to the upstream in time', { cause: error })
    return new GatewayError('bad_gateway', proxy.reason === 'refused'
      ? `the egress proxy refused the tunnel to the upstream (status ${proxy.status ?? 0}${proxy.status === 407 ? ': its credentials are missing or wrong' : ''})`
      : 'the egress proxy could not be reached', { cause: error })
  }
  const certificate = causes(error).find((e) => typeof e.code === 'string' && CERTIFICATE.test(e.code))
  if (certificate !== undefined) return new GatewayError('bad_gateway', `the upstream's TLS certificate was not accepted (${String(certificate.code)})`, { cause: error })
  const e = error as { statusCode?: number, code?: string } | null
  return e?.statusCode === 504 || e?.code === 'UND_ERR_CONNECT_TIMEOUT'
    ? new GatewayError('gateway_timeout', 'the upstream did not answer in time', { cause: error })
    : new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: error })
}

/** The error and its causes, outermost first (reply-from wraps undici's errors). */
function causes (error: unknown): Array<Error & { code?: unknown }> {
  const out: Array<Error & { code?: unknown }> = []
  for (let e = error; e instanceof Error && out.length < 8; e = e.cause) out.push(e)
  return out
}
