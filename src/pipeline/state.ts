// What the gateway learns about one request as it goes through the stages (ARCHITECTURE.md).
// Each stage fills in its part; the decision record (pipeline/record.ts) is built
// from it field by field, and never from headers or bodies.
import type { ClientAddress } from '../geo/client-ip.js'
import type { Location } from '../geo/locator.js'
import type { Decision } from '../policy/evaluate.js'
import type { Runtime } from '../runtime.js'
import type { UpstreamConfig } from '../config/validate.js'
import type { Identity, TokenResult } from '../identity/verifier.js'
import type { RequestEndpoint } from './endpoint.js'
import type { LargeBodyLease } from './large-bodies.js'

export interface RequestState {
  /** The revision in force when the request arrived; it decides the whole request. */
  runtime: Runtime
  decisionId: string
  startedAt: bigint
  /** Stage caller: the address and where it was read. */
  client: ClientAddress
  /** Stage caller: where that address is. */
  location: Location
  /** Stage client: the authenticated client's name (client authentication on), else null. */
  clientName: string | null
  /** Stage identity: the end user as a verified identity token states it; null when unknown or not checked. */
  identity: Identity | null
  /** Why the identity is unknown (no token, none required). */
  identityProblem: string | undefined
  /** What became of the identity token (null: the revision has no identity section). */
  identityResult: TokenResult | null
  /** The upstream mounted at the request's first path segment, known even when the rest cannot be read. */
  upstream: UpstreamConfig | null
  /** Stage endpoint: where the request goes below its upstream and where it names its model. */
  endpoint: RequestEndpoint | null
  /** Stage models: the model as the request names it, and the canonical id the policy matched. */
  model: string | null
  canonicalModel: string | null
  /** The distinct models of a batch (at most 20), when the request is one. */
  batchModels: readonly string[] | null
  /** Stage models, for re-deciding from the log (geofence replay): why the endpoint's model cannot be seen. */
  unseenModel: string | null
  /** An endpoint the dialect does not list ("METHOD /path"): policy.unknown_endpoint decided. */
  unlistedEndpoint: string | null
  /** Stage models: a model-less endpoint as an upstream's `endpoints` list matches it (`GET /v1/models`). */
  modelLessEndpoint: string | null
  /** Stage models: why a route cannot be carried out on this request (a batch, a multipart body). */
  notRoutable: string | null
  /** Stage decision. A request refused before one (400, 404, 413...) records its refusal here. */
  decision: Decision | null
  /** The upstream's response body failed mid-way (so a cut response was not the client's doing). */
  upstreamFailed: boolean
  /** The request's claim on a large-body slot (pipeline/large-bodies.ts); null where no body is read (a WebSocket, a CLI). */
  largeBody: LargeBodyLease | null
  /** The gateway answered for the upstream (502, 504): why it could not be reached or did not answer. */
  upstreamError: string | null
  /** The decision line was written. */
  logged: boolean
}
