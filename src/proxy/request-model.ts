// The model a request names in its JSON body. Anything the gateway cannot read with certainty
// is refused with a 400: the gateway never guesses, and never forwards what it did not check.
import { GatewayError } from '../errors.js'
import { modelIdProblem } from '../policy/model-id.js'
import { arrayElements, topLevelMembers, type Member } from './json-members.js'

// ignoreBOM keeps a byte order mark in the text, where JSON.parse refuses it (RFC 8259 forbids one).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export interface BodyModel {
  model: string
  /** Where the model's value is in the body, to rewrite it for a route. */
  member: Member
}

function parseObject (body: Buffer | undefined): Record<string, unknown> {
  if (body === undefined || body.length === 0) {
    throw new GatewayError('invalid_request', 'the request has no body; a JSON body with a "model" is required')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(body))
  } catch {
    throw new GatewayError('invalid_request', 'the request body is not valid JSON in UTF-8')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new GatewayError('invalid_request', 'the request body must be a JSON object')
  }
  return parsed as Record<string, unknown>
}

/** The model a JSON body names in its top-level `field` (`model`; Bedrock's StartAsyncInvoke: `modelId`). */
export function modelFromJsonBody (body: Buffer | undefined, field = 'model'): BodyModel {
  const parsed = parseObject(body)
  return modelOf(parsed, topLevelMembers(body ?? Buffer.alloc(0)), '', field)
}

/**
 * For an endpoint whose path names the model: every model its JSON body names as well (the
 * top-level `model`, and with `items` each `requests[].model`), each read with the same care.
 * An empty body names none; a body that is not a JSON object is refused.
 */
export function bodyModels (body: Buffer | undefined, items: boolean): string[] {
  if (body === undefined || body.length === 0) return []
  const parsed = parseObject(body)
  const out: string[] = []
  if ('model' in parsed) out.push(modelOf(parsed, topLevelMembers(body), '').model)
  if (items && 'requests' in parsed) {
    eachItem(body, parsed, (item, itemBuf, where) => {
      if (item !== null && typeof item === 'object' && 'model' in item) out.push(modelOf(item as Record<string, unknown>, topLevelMembers(itemBuf), where).model)
    })
  }
  return out
}

/** Calls `fn` with each element of the top-level `requests` list, parsed and as its bytes. */
function eachItem (buf: Buffer, parsed: Record<string, unknown>, fn: (item: unknown, itemBuf: Buffer, where: string) => void): void {
  const requests = parsed['requests']
  const requestsMembers = topLevelMembers(buf).filter((m) => m.key === 'requests')
  const member = requestsMembers[0]
  if (!Array.isArray(requests) || requests.length === 0 || requestsMembers.length !== 1 || member === undefined) {
    throw new GatewayError('invalid_request', 'a batch needs exactly one non-empty "requests" list')
  }
  const items = arrayElements(buf, member)
  requests.forEach((item: unknown, i) => {
    const span = items[i]
    if (span === undefined) throw new GatewayError('invalid_request', `requests[${i}] cannot be read`)
    fn(item, buf.subarray(span.start, span.end), `requests[${i}]: `)
  })
}

/**
 * Every model of an Anthropic message batch (`requests[].params.model`), in order, each read
 * with the same care as a single request's. A batch passes only if every model passes.
 */
export function batchModels (body: Buffer | undefined): string[] {
  const parsed = parseObject(body)
  const buf = body ?? Buffer.alloc(0)
  const out: string[] = []
  eachItem(buf, parsed, (item, itemBuf, where) => {
    const params = (item as { params?: unknown } | null)?.params
    const paramsMembers = topLevelMembers(itemBuf).filter((m) => m.key === 'params')
    const span = paramsMembers[0]
    if (params === null || typeof params !== 'object' || Array.isArray(params) || span === undefined) {
      throw new GatewayError('invalid_request', `${where.slice(0, -2)} has no "params" object`)
    }
    if (paramsMembers.length !== 1) throw new GatewayError('invalid_request', `${where.slice(0, -2)} has more than one "params"`)
    out.push(modelOf(params as Record<string, unknown>, topLevelMembers(itemBuf.subarray(span.start, span.end)), `${where.slice(0, -2)}.params: `).model)
  })
  return out
}

function modelOf (parsed: Record<string, unknown>, allMembers: Member[], where: string, field = 'model'): BodyModel {
  const members = allMembers.filter((m) => m.key === field)
  if (members.length > 1) {
    throw new GatewayError('invalid_request', `${where}the request body has more than one "${field}" key; parsers disagree on which one counts`)
  }
  const model = parsed[field]
  const member = members[0]
  if (typeof model !== 'string' || model === '' || member === undefined) {
    throw new GatewayError('invalid_request', model === undefined
      ? `${where}the request body has no "${field}"`
      : `${where}"${field}" must be a non-empty string`)
  }
  return { model: checkModelId(model, where), member }
}

/** The model id as it is, or a 400 saying why it is not one (policy/model-id.ts). */
export function checkModelId (model: string, where: string): string {
  const problem = modelIdProblem(model)
  if (problem === null) return model
  throw new GatewayError('invalid_request', model === '' ? `${where}"model" must be a non-empty string` : `${where}"model" is not a model id (${problem})`)
}
