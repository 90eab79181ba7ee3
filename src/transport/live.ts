// A WebSocket session that names its model in its first message (Gemini Live and Vertex AI's
// Live API: {"setup":{"model":"models/..."}}), carried out over the pipeline. The client's
// handshake is completed at once (its 101 carries the decision id), and nothing is dialled until
// that first message is in: it must arrive within server.body_timeout and server.body_limit, and
// is decided by the same stages as an HTTP body (models, decision, plan). A refusal closes the
// client's WebSocket with 4000 + the status its decision line records (4451 for a block, 4400
// for a message that cannot be read, 4408 for none in time) and the refusal's message as the
// reason; an allowed session dials the plan's upstream, sends the first message as it was read
// (a route rewrites `setup.model`), then anything the client sent meanwhile, and relays the rest
// (transport/tunnel.ts), where a later `setup` closes the session. The decision line is written
// once: at the refusal, at 101 when the upstream opens, or when the session ends before either.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type WebSocket from 'ws'
import { GatewayError } from '../errors.js'
import { decideFrame, type FrameVerdict } from '../pipeline/frames.js'
import type { Plan } from '../pipeline/plan.js'
import { DECISION_HEADER, refusedBeforeDecision } from '../pipeline/refusal.js'
import { decideRequest } from '../pipeline/request.js'
import { upstreamError } from '../proxy/upstream-error.js'
import { requestHead } from './http.js'
import { asBuffer, openUpstream, relay } from './tunnel.js'
import type { Upgrade } from './upgrade.js'

export interface LiveDeps {
  maxPayload: number
  firstMessageMs: number
  log: (request: FastifyRequest, status: number, cut?: string) => void
  frameRefused: (request: FastifyRequest, verdict: FrameVerdict) => void
  /** Completes the client's handshake with these header lines on its 101. */
  accept: (request: FastifyRequest, upgrade: Upgrade, headers: string[]) => Promise<WebSocket>
}

/** A refusal's close code: 4000 + the status of its decision line (RFC 6455 leaves 4000-4999 to applications). */
export const closeCode = (status: number): number => 4000 + status

/** The longest close reason RFC 6455 allows, in bytes. */
const MAX_REASON = 123

type Phase = 'setup' | 'deciding' | 'open' | 'over'

export async function liveSession (request: FastifyRequest, reply: FastifyReply, upgrade: Upgrade, deps: LiveDeps): Promise<void> {
  const st = request.geofence
  reply.hijack()
  const client = await deps.accept(request, upgrade, [`${DECISION_HEADER}: ${st.decisionId}`])
  let phase: Phase = 'setup'
  let upstream: WebSocket | null = null
  /** What the client sent after its first message while the upstream was being dialled, each decided as it came. */
  const held: Array<{ data: Buffer, isBinary: boolean }> = []
  let heldBytes = 0

  /** The session ends before it opened: the client's socket closed with `status`'s code and `message`, and the decision line. */
  const end = (status: number, message: string, cut?: string): void => {
    if (phase === 'open' || phase === 'over') return
    phase = 'over'
    clearTimeout(timer)
    upstream?.terminate()
    deps.log(request, status, cut)
    client.close(closeCode(status), closeReason(message))
  }
  const refuse = (err: GatewayError, cut?: string): void => {
    if (err.status >= 500) request.log.error({ err }, 'live session failed')
    refusedBeforeDecision(st, err)
    end(err.status, err.message, cut)
  }

  let timer = setTimeout(() => {
    const why = 'no first message (setup) arrived within server.body_timeout'
    refuse(new GatewayError('request_timeout', why), `the gateway cut the request: ${why}`)
  }, deps.firstMessageMs)

  const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
    const bytes = asBuffer(data)
    if (phase === 'setup') {
      phase = 'deciding'
      clearTimeout(timer)
      void decide(bytes)
      return
    }
    if (phase !== 'deciding') return
    const verdict = decideFrame(st, bytes, isBinary)
    if (verdict.refused !== null) {
      refuse(new GatewayError('invalid_request', verdict.refused))
      return
    }
    heldBytes += bytes.length
    if (heldBytes > deps.maxPayload) {
      refuse(new GatewayError('too_large', 'the messages sent before the upstream answered are larger than server.body_limit'))
      return
    }
    held.push({ data: bytes, isBinary })
  }
  client.on('message', onMessage)
  client.on('error', (err: Error & { code?: string }) => {
    // `ws` closes the connection itself: 1009 for a message over server.body_limit, 1002 for a broken frame.
    if (phase !== 'setup' && phase !== 'deciding') return
    const tooLarge = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
    refusedBeforeDecision(st, tooLarge
      ? new GatewayError('too_large', 'a message larger than server.body_limit')
      : new GatewayError('invalid_request', `a WebSocket frame that cannot be read (${err.code ?? 'malformed'})`))
    phase = 'over'
    clearTimeout(timer)
    upstream?.terminate()
    deps.log(request, tooLarge ? 413 : 400)
  })
  client.on('close', () => {
    if (phase !== 'setup' && phase !== 'deciding') return
    phase = 'over'
    clearTimeout(timer)
    upstream?.terminate()
    deps.log(request, 499, 'the client went away')
  })

  /** The first message decided; an allowed session dials the upstream. */
  async function decide (first: Buffer): Promise<void> {
    let outcome: Awaited<ReturnType<typeof decideRequest>>
    try {
      outcome = await decideRequest(st, requestHead(request), first)
    } catch (err) {
      refuse(err instanceof GatewayError ? err : new GatewayError('internal', 'internal error in the gateway', { cause: err }))
      return
    }
    if (phase !== 'deciding') return
    if (outcome.kind === 'refuse') {
      end(outcome.refusal.status, outcome.refusal.message)
      return
    }
    dial(outcome.plan)
  }

  function dial (plan: Plan): void {
    const ws = openUpstream(plan, request.headers, deps.maxPayload, st.runtime.egress.routeFor(plan.target).connect, false)
    upstream = ws
    timer = setTimeout(() => { fail(new GatewayError('gateway_timeout', 'the upstream did not answer in time')) }, plan.target.timeouts.connectMs)
    const fail = (err: GatewayError): void => { end(err.status, err.message) }
    ws.once('open', () => {
      if (phase !== 'deciding') return
      phase = 'open'
      clearTimeout(timer)
      client.off('message', onMessage)
      ws.send(plan.body ?? Buffer.alloc(0), { binary: false })
      for (const m of held.splice(0)) ws.send(m.data, { binary: m.isBinary })
      relay(client, ws, {
        idleMs: plan.target.timeouts.idleMs,
        inspect: (data, isBinary) => decideFrame(st, data, isBinary),
        // The Live API has no error message: a refused message ends the session, as Google's own refusals do.
        refuse: (c, verdict) => {
          deps.frameRefused(request, verdict)
          c.close(closeCode(400), closeReason(verdict.refused ?? ''))
        },
      })
      deps.log(request, 101)
    })
    // The upstream declined to switch: its status, and Google's message if it sent one.
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => { if ((size += c.length) <= 16_384) chunks.push(c) })
      res.on('error', () => { fail(new GatewayError('bad_gateway', 'the upstream answer could not be read')) })
      res.on('end', () => {
        const status = res.statusCode ?? 502
        if (phase !== 'deciding') return
        phase = 'over'
        clearTimeout(timer)
        deps.log(request, status)
        client.close(status >= 400 && status <= 599 ? closeCode(status) : closeCode(502), closeReason(`the upstream declined the session (${status}): ${googleMessage(Buffer.concat(chunks))}`))
        ws.terminate()
      })
    })
    ws.once('error', (err) => { fail(upstreamError(err)) })
  }
}

/** A close reason within RFC 6455's 123 bytes, cut on a character. */
export function closeReason (message: string): string {
  if (Buffer.byteLength(message) <= MAX_REASON) return message
  let cut = message.slice(0, MAX_REASON - 3)
  while (Buffer.byteLength(cut) > MAX_REASON - 3) cut = cut.slice(0, -1)
  return `${cut}...`
}

/** `error.message` of Google's error shape, or "" for anything else. */
function googleMessage (body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } }
    return typeof parsed.error?.message === 'string' ? parsed.error.message : ''
  } catch {
    return ''
  }
}
