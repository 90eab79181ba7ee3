// The `model` field of a multipart/form-data body (OpenAI audio transcriptions and
// translations, image edits), and the form as it is forwarded: re-encoded from what was read
// (proxy/multipart-form.ts), so that the upstream reads the fields the gateway read. Exactly
// one `model` field, a model id, and no other part whose name a server could take for it, or
// the request is refused: the gateway never guesses which field a server would take.
import { GatewayError } from '../errors.js'
import { foldsTo } from './key-fold.js'
import { encodeForm, parseForm } from './multipart-form.js'
import { checkModelId } from './request-model.js'

export interface MultipartRead {
  /** The `model` field; undefined when the form has none (and may do without). */
  model: string | undefined
  /** The form re-encoded, and its Content-Type with the new boundary. */
  body: Buffer
  contentType: string
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The form's one `model` field (`required`: a form without one is refused), and the form re-encoded. */
export function readMultipart (body: Buffer | undefined, contentType: string | undefined, required: boolean): MultipartRead {
  if (contentType === undefined || !/^multipart\/form-data\s*;/i.test(contentType)) {
    throw new GatewayError('invalid_request', 'this endpoint takes multipart/form-data with a "model" field')
  }
  if (body === undefined || body.length === 0) throw new GatewayError('invalid_request', 'the request has no body')
  const parts = parseForm(body, contentType)
  const models: string[] = []
  for (const p of parts) {
    if (p.name !== 'model') {
      // ASP.NET binds form fields ignoring case; the gateway reads `model` only.
      if (foldsTo(p.name, 'model')) throw new GatewayError('invalid_request', `the multipart body has a field "${p.name}", which servers that match names ignoring case read as "model"`)
      continue
    }
    if (p.filename !== undefined) throw new GatewayError('invalid_request', '"model" must be a field, not a file')
    try {
      models.push(utf8.decode(p.data))
    } catch {
      throw new GatewayError('invalid_request', '"model" is not UTF-8')
    }
  }
  if (models.length === 0 && required) throw new GatewayError('invalid_request', 'the multipart body has no "model" field')
  if (models.length > 1) throw new GatewayError('invalid_request', 'the multipart body has more than one "model" field; servers disagree on which one counts')
  const model = models[0] === undefined ? undefined : checkModelId(models[0], '')
  return { model, ...encodeForm(parts) }
}
