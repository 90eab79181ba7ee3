// The stages in order (ARCHITECTURE.md), for every transport: `beginRequest` runs those that
// need only the request head (caller, location, client, endpoint) before any body is read, and
// `verifyIdentity` (pipeline/identity.ts) the one that may wait on the network (key fetches);
// `decideRequest` runs the rest (models, decision, plan) once the body is in. Transports
// (transport/http.ts, transport/websocket.ts) carry out the outcome and nothing else.
import type { IncomingHttpHeaders } from 'node:http'
import type { GatewayError } from '../errors.js'
import type { PeerCertificate } from '../proxy/peer-certificate.js'
import type { Runtime } from '../runtime.js'
import { findCaller } from './caller.js'
import { authenticateClient } from './client.js'
import { decide } from './decision.js'
import { findEndpoint, mountedUpstream, notMounted } from './endpoint.js'
import { readModels } from './models.js'
import { plan, type Plan } from './plan.js'
import { blockRefusal, type Refusal } from './refusal.js'
import type { RequestState } from './state.js'

/** A request head as every transport has it. */
export interface RequestHead {
  peer: string | undefined
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** The client certificate of its TLS connection, if it sent one. */
  certificate?: PeerCertificate | null
}

/**
 * The stages before the body, under the revision in force (kept to the end of the request).
 * Never throws: a request that cannot go on carries the error that refuses it.
 */
export function beginRequest (runtime: Runtime, head: RequestHead, id: string): { state: RequestState, error: GatewayError | null } {
  const caller = findCaller(runtime, head.peer, head.headers)
  const upstream = mountedUpstream(runtime.config, head.url) ?? null
  const state: RequestState = {
    runtime,
    decisionId: id,
    startedAt: process.hrtime.bigint(),
    client: caller.client,
    location: caller.location,
    clientName: null,
    identity: null,
    identityProblem: undefined,
    identityResult: null,
    upstream,
    endpoint: null,
    model: null,
    canonicalModel: null,
    batchModels: null,
    unseenModel: null,
    unlistedEndpoint: null,
    modelLessEndpoint: null,
    notRoutable: null,
    decision: null,
    upstreamFailed: false,
    largeBody: null,
    upstreamError: null,
    logged: false,
  }
  try {
    state.clientName = authenticateClient(runtime.config.clients, head.headers, { clients: runtime.config.clientCertificates, peer: head.certificate ?? null })
    if (upstream !== null) state.endpoint = findEndpoint(runtime.config, upstream, head.method, head.url)
  } catch (err) {
    return { state, error: err as GatewayError }
  }
  return { state, error: null }
}

export type Outcome = { kind: 'refuse', refusal: Refusal } | { kind: 'forward', plan: Plan }

/** The stages after the body: the models, the decision, and what to send. They fill in `st`. */
export async function decideRequest (st: RequestState, head: RequestHead, body: Buffer | undefined): Promise<Outcome> {
  const { runtime, endpoint } = st
  const { method, headers } = head
  if (endpoint === null) throw notMounted(head.url)
  const { server } = runtime.config
  let read: Awaited<ReturnType<typeof readModels>>
  try {
    read = await readModels({ endpoint, method, headers, body, reading: { maxExpansionRatio: server.maxExpansionRatio, batchMaxItems: server.batchMaxItems, lease: st.largeBody } })
  } finally {
    // The body has been read and checked (or refused): a large one gives its slot back before it is forwarded.
    st.largeBody?.release()
  }
  const { decision, model } = decide({
    runtime,
    upstream: endpoint.upstream,
    client: st.clientName,
    location: st.location,
    locationProblem: st.client.problem ?? st.location.reason,
    identity: st.identity,
    identityProblem: st.identityProblem,
  }, endpoint, read)
  st.model = model?.written ?? null
  st.canonicalModel = model?.canonical ?? null
  if (read.batch) st.batchModels = read.models.slice(0, 20).map((m) => m.written)
  // What a replay under another policy needs besides the models (evidence/replay.ts).
  if (read.models.length === 0) {
    if (read.unseen !== undefined) st.unseenModel = read.unseen
    if (read.unlistedEndpoint !== undefined) st.unlistedEndpoint = read.unlistedEndpoint
    else st.modelLessEndpoint = `${method} ${endpoint.path.key}`
  } else if (read.rewrite.kind === 'refused') {
    st.notRoutable = read.rewrite.why
  }
  st.decision = decision
  // The block path answers directly: no exception (and no stack trace) per refusal.
  if (decision.enforced && decision.action === 'block') return { kind: 'refuse', refusal: blockRefusal(st, decision) }
  return { kind: 'forward', plan: await plan({ runtime, endpoint, method, headers, read, decision }) }
}
