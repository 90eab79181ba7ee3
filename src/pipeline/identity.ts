// Stage identity: who the end user is, from the identity token the application forwards
// (identity.header), verified by the revision's verifier (src/identity/). A token that was sent
// and does not verify is a 401, keys that cannot be had a 503; no token where none is required
// leaves the identity unknown, for the rules that judge it to decide (policy.unknown_location).
import type { IncomingHttpHeaders } from 'node:http'
import { GatewayError } from '../errors.js'
import type { RequestState } from './state.js'

/** Runs only where the revision has an identity section; the other requests never wait on it. */
export async function verifyIdentity (st: RequestState, headers: IncomingHttpHeaders): Promise<void> {
  const verifier = st.runtime.identity
  if (verifier === null) return
  const result = await verifier.verify(headers[verifier.header])
  if (!result.ok) {
    st.identityResult = result.result
    throw new GatewayError(result.kind, result.reason)
  }
  st.identityResult = result.identity === null ? 'absent' : 'ok'
  st.identity = result.identity
  if (result.identity === null) st.identityProblem = result.reason
}
