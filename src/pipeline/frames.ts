// Stage models and decision, again, for each frame a client sends through a WebSocket tunnel:
// a Realtime session can name models in-band (session.update's transcription model), a Gemini
// Live session only in its first message (a later `setup` is refused). Every client frame is
// read; one the gateway cannot read (binary Realtime, not JSON) or that names a model the policy
// refuses this caller is not forwarded, and says why.
import { DIALECTS } from '../dialects/registry.js'
import { GatewayError } from '../errors.js'
import { foldsTo } from '../proxy/key-fold.js'
import { checkModelId } from '../proxy/request-model.js'
import { decideModel } from './decision.js'
import { nameModel } from './models.js'
import type { RequestState } from './state.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface FrameVerdict {
  /** Null: forward the frame. Else why it is refused, and the model that was refused, if one was. */
  refused: string | null
  model?: string
  /** The client's event_id, to answer in its terms. */
  eventId?: string
}

const PASS: FrameVerdict = { refused: null }

export function decideFrame (st: RequestState, data: Buffer, isBinary: boolean): FrameVerdict {
  const endpoint = st.endpoint
  if (endpoint === null) return { refused: 'the tunnel has no endpoint' }
  if (endpoint.modelSource.kind === 'setup') return liveFrame(data)
  const dialect = endpoint.dialect
  if (dialect.frameModels === undefined) return PASS
  if (isBinary) return { refused: 'a binary frame: the Realtime API takes JSON text events' }
  let event: unknown
  try {
    event = JSON.parse(utf8.decode(data))
  } catch {
    return { refused: 'a frame that is not JSON in UTF-8' }
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return { refused: 'a frame that is not a JSON object' }
  const ev = event as Record<string, unknown>
  const eventId = typeof ev['event_id'] === 'string' ? ev['event_id'].slice(0, 128) : undefined
  const withId = eventId === undefined ? {} : { eventId }
  let models: string[]
  try {
    models = dialect.frameModels(ev).map((m) => checkModelId(m, `${String(ev['type'])}: `))
  } catch (err) {
    if (err instanceof GatewayError) return { refused: err.message, ...withId }
    throw err
  }
  const upstream = endpoint.upstream
  for (const model of models) {
    const decision = decideModel({
      runtime: st.runtime,
      upstream,
      client: st.clientName,
      location: st.location,
      locationProblem: st.client.problem ?? st.location.reason,
      identity: st.identity,
      identityProblem: st.identityProblem,
    }, nameModel(DIALECTS[upstream.dialect], upstream, model))
    // A frame is never rewritten: a model that would be routed is refused too.
    if (decision.enforced && decision.action !== 'allow') return { refused: `model "${model}" is not available to this caller: ${decision.reason}`, model, ...withId }
  }
  return PASS
}

/**
 * A Live session's message after its first: a JSON object (text, or the same bytes as a binary
 * frame) that is not a `setup`, which names the session's model and is taken once, first.
 */
function liveFrame (data: Buffer): FrameVerdict {
  let message: unknown
  try {
    message = JSON.parse(utf8.decode(data))
  } catch {
    return { refused: 'a message that is not JSON in UTF-8' }
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return { refused: 'a message that is not a JSON object' }
  for (const key in message) {
    if (foldsTo(key, 'setup')) return { refused: 'a second "setup": a Live session names its model once, in its first message' }
  }
  return PASS
}
