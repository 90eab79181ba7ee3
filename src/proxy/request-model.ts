// The model a request names in its JSON body. Anything the gateway cannot read with certainty
// is refused with a 400: the gateway never guesses, and never forwards what it did not check.
import { GatewayError } from '../errors.js'
import { arrayElements, topLevelMembers, type Member } from './json-members.js'

// ignoreBOM keeps a byte order mark in the text, where JSON.parse refuses it (RFC 8259 forbids one).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
export const MAX_MODEL_LENGTH = 256
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

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

export function modelFromJsonBody (body: Buffer | undefined): BodyModel {
  const parsed = parseObject(body)
  return modelOf(parsed, topLevelMembers(body ?? Buffer.alloc(0)), '')
}

/**
 * Every model of an Anthropic message batch (`requests[].params.model`), in order, each read
 * with the same care as a single request's. A batch passes only if every model passes.
 */
export function batchModels (body: Buffer | undefined): string[] {
  const parsed = parseObject(body)
  const buf = body ?? Buffer.alloc(0)
  const requests = parsed['requests']
  const requestsMembers = topLevelMembers(buf).filter((m) => m.key === 'requests')
  const member = requestsMembers[0]
  if (!Array.isArray(requests) || requests.length === 0 || requestsMembers.length !== 1 || member === undefined) {
    throw new GatewayError('invalid_request', 'a batch needs exactly one non-empty "requests" list')
  }
  const items = arrayElements(buf, member)
  return requests.map((item: unknown, i) => {
    const span = items[i]
    const params = (item as { params?: unknown } | null)?.params
    if (span === undefined || params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw new GatewayError('invalid_request', `requests[${i}] has no "params" object`)
    }
    const itemMembers = topLevelMembers(buf.subarray(span.start, span.end)).filter((m) => m.key === 'params')
    const paramsSpan = itemMembers[0]
    if (itemMembers.length !== 1 || paramsSpan === undefined) throw new GatewayError('invalid_request', `requests[${i}] has more than one "params"`)
    const paramsBuf = buf.subarray(span.start + paramsSpan.start, span.start + paramsSpan.end)
    return modelOf(params as Record<string, unknown>, topLevelMembers(paramsBuf), `requests[${i}].params: `).model
  })
}

function modelOf (parsed: Record<string, unknown>, allMembers: Member[], where: string): BodyModel {
  const members = allMembers.filter((m) => m.key === 'model')
  if (members.length > 1) {
    throw new GatewayError('invalid_request', `${where}the request body has more than one "model" key; parsers disagree on which one counts`)
  }
  const model = parsed['model']
  const member = members[0]
  if (typeof model !== 'string' || model === '' || member === undefined) {
    throw new GatewayError('invalid_request', model === undefined
      ? `${where}the request body has no "model"`
      : `${where}"model" must be a non-empty string`)
  }
  return { model: checkModelId(model, where), member }
}

/**
 * Model ids are short printable names; anything else is not one (and would carry arbitrary
 * client text into the decision log).
 */
export function checkModelId (model: string, where: string): string {
  if (model === '') throw new GatewayError('invalid_request', `${where}"model" must be a non-empty string`)
  if (model.length > MAX_MODEL_LENGTH || CONTROL.test(model)) {
    throw new GatewayError('invalid_request', `${where}"model" is not a model id (over ${MAX_MODEL_LENGTH} characters, or control characters)`)
  }
  return model
}
