// The model a request names in its JSON body. Anything the gateway cannot read with certainty
// is refused with a 400: the gateway never guesses, and never forwards what it did not check.
import { GatewayError } from '../errors.js'
import { topLevelMembers, type Member } from './json-members.js'

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

export function modelFromJsonBody (body: Buffer | undefined): BodyModel {
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
  const members = topLevelMembers(body).filter((m) => m.key === 'model')
  if (members.length > 1) {
    throw new GatewayError('invalid_request', 'the request body has more than one "model" key; parsers disagree on which one counts')
  }
  const model = (parsed as { model?: unknown }).model
  const member = members[0]
  if (typeof model !== 'string' || model === '' || member === undefined) {
    throw new GatewayError('invalid_request', model === undefined
      ? 'the request body has no "model"'
      : '"model" must be a non-empty string')
  }
  // Model ids are short printable names; anything else is not one (and would carry
  // arbitrary client text into the decision log).
  if (model.length > MAX_MODEL_LENGTH || CONTROL.test(model)) {
    throw new GatewayError('invalid_request', `"model" is not a model id (over ${MAX_MODEL_LENGTH} characters, or control characters)`)
  }
  return { model, member }
}
