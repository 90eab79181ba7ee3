// The `model` field of a multipart/form-data body (OpenAI audio transcriptions and
// translations, image edits), read with @fastify/busboy. Exactly one `model` field, a model id,
// or the request is refused: the gateway never guesses which field a server would take.
import { Busboy } from '@fastify/busboy'
import { GatewayError } from '../errors.js'
import { checkModelId } from './request-model.js'

export async function modelFromMultipart (body: Buffer | undefined, contentType: string | undefined): Promise<string> {
  if (contentType === undefined || !/^multipart\/form-data\s*;/i.test(contentType)) {
    throw new GatewayError('invalid_request', 'this endpoint takes multipart/form-data with a "model" field')
  }
  if (body === undefined || body.length === 0) throw new GatewayError('invalid_request', 'the request has no body')
  const models: string[] = []
  await new Promise<void>((resolve, reject) => {
    let bb: InstanceType<typeof Busboy>
    try {
      bb = new Busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: 1024, fields: 1000, parts: 1000 } })
    } catch (err) {
      reject(new GatewayError('invalid_request', 'the multipart body cannot be read (boundary)', { cause: err }))
      return
    }
    bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
      if (name !== 'model') return
      if (valueTruncated) reject(new GatewayError('invalid_request', '"model" is not a model id (too long)'))
      models.push(value)
    })
    bb.on('file', (name: string, stream: NodeJS.ReadableStream) => {
      if (name === 'model') reject(new GatewayError('invalid_request', '"model" must be a field, not a file'))
      stream.resume()
    })
    bb.on('error', (err: unknown) => { reject(new GatewayError('invalid_request', 'the multipart body cannot be read', { cause: err })) })
    bb.on('finish', () => { resolve() })
    bb.end(body)
  })
  if (models.length === 0) throw new GatewayError('invalid_request', 'the multipart body has no "model" field')
  if (models.length > 1) throw new GatewayError('invalid_request', 'the multipart body has more than one "model" field; servers disagree on which one counts')
  return checkModelId(models[0] ?? '', '')
}
