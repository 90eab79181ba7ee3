// Amazon Bedrock runtime (docs.aws.amazon.com/bedrock/latest/APIReference). The model is in the
// path: /model/{modelId}/invoke, /invoke-with-response-stream, /converse, /converse-stream,
// /count-tokens; StartAsyncInvoke (POST /async-invoke) names it as the body's `modelId`.
// A model id is a foundation model (`anthropic.claude-...-v1:0`), a cross-region inference
// profile (`us.`, `eu.`, `apac.`, `global.` ...), or an ARN of either (an unknown prefix or
// vendor is not understood: policy/model-id.ts); the SDKs send its ":" as %3A and an ARN's "/"
// as %2F. An application inference profile, provisioned model or
// custom model ARN says nothing of the model behind it: it must be mapped in model_aliases.
// Requests are SigV4-signed over path and body, so a request is never rewritten (no routes).
// Errors: {"message":"..."} with the exception named in x-amzn-ErrorType, which the AWS SDK
// turns into its typed exception (AccessDeniedException, ValidationException, ...).
import type { ErrorKind } from '../errors.js'
import { MODEL_ARN } from '../policy/model-id.js'
import { MODEL_LESS, type Dialect, type ModelSource } from './types.js'

const EXCEPTION: Readonly<Record<ErrorKind, string>> = {
  blocked: 'AccessDeniedException',
  invalid_request: 'ValidationException',
  unauthorized: 'UnrecognizedClientException',
  not_found: 'ResourceNotFoundException',
  too_large: 'ValidationException',
  unsupported_media: 'ValidationException',
  bad_gateway: 'ServiceUnavailableException',
  gateway_timeout: 'ServiceUnavailableException',
  overloaded: 'ThrottlingException',
  identity_unavailable: 'ServiceUnavailableException',
  internal: 'InternalServerException',
}

const ACTIONS = new Set(['invoke', 'invoke-with-response-stream', 'converse', 'converse-stream', 'count-tokens'])
const ASYNC_INVOKE: ModelSource = { kind: 'json', field: 'modelId' }

export const bedrock: Dialect = {
  name: 'bedrock',
  family: 'bedrock',
  endpoint: (method, path) => {
    // By segment: an ARN model id holds a (decoded) slash.
    const [first, , action] = path.segments
    if (path.segments.length === 3 && first?.toLowerCase() === 'model' && ACTIONS.has(action?.toLowerCase() ?? '')) {
      return { kind: 'path', model: path.segments[1] ?? '', segment: 1, prefix: '', suffix: '' }
    }
    if (method === 'POST' && path.key === '/async-invoke') return ASYNC_INVOKE
    return MODEL_LESS
  },
  opaque: (model) => {
    if (!model.toLowerCase().startsWith('arn:') || MODEL_ARN.test(model)) return null
    const type = /^arn:[^:]*:[^:]*:[^:]*:[^:]*:([^/:]*)/.exec(model)?.[1]
    return `this Bedrock ARN (${type === undefined || type === '' ? 'of no resource type' : type}: an application inference profile, provisioned or custom model, or another resource) does not say which model it serves`
  },
  ids: { api: 'Bedrock', vendorDots: true },
  signed: true,
  renderError: (_kind, message) => ({ message }),
  errorHeaders: (kind) => ({ 'x-amzn-errortype': EXCEPTION[kind] }),
}
