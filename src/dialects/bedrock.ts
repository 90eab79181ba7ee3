// Amazon Bedrock runtime (docs.aws.amazon.com/bedrock/latest/APIReference). The model is in the
// path: /model/{modelId}/invoke, /invoke-with-response-stream, /converse, /converse-stream,
// /count-tokens, /invoke-with-bidirectional-stream; StartAsyncInvoke (POST /async-invoke) names
// it as the body's `modelId`. The rest of the runtime API names none (GetAsyncInvoke,
// `GET /async-invoke/{invocationArn}`, takes an ARN whose "/" the SDK sends as %2F: that one
// segment may hold it); anything else is policy.unknown_endpoint.
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
import { endpointTable, MODEL_LESS, UNLISTED, type Dialect } from './types.js'

const EXCEPTION: Readonly<Record<ErrorKind, string>> = {
  blocked: 'AccessDeniedException',
  invalid_request: 'ValidationException',
  unauthorized: 'UnrecognizedClientException',
  not_found: 'ResourceNotFoundException',
  too_large: 'ValidationException',
  headers_too_large: 'ValidationException',
  request_timeout: 'ValidationException',
  unsupported_media: 'ValidationException',
  bad_gateway: 'ServiceUnavailableException',
  gateway_timeout: 'ServiceUnavailableException',
  overloaded: 'ThrottlingException',
  identity_unavailable: 'ServiceUnavailableException',
  internal: 'InternalServerException',
}

/** An asynchronous invocation's ARN (StartAsyncInvoke's answer, GetAsyncInvoke's path). */
const INVOCATION_ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:[0-9]*:async-invoke\/[a-z0-9]+$/i

/** The runtime's model actions: `/model/{modelId}/{action}` (the bidirectional stream is HTTP/2 only). */
const ACTIONS = new Set(['invoke', 'invoke-with-response-stream', 'converse', 'converse-stream', 'count-tokens', 'invoke-with-bidirectional-stream'])

/**
 * The rest of the runtime API (@aws-sdk/client-bedrock-runtime's operations), an allow-list:
 * any other endpoint is policy.unknown_endpoint.
 */
const endpoints = endpointTable({
  'POST /async-invoke': { kind: 'json', field: 'modelId' },
  'GET /async-invoke': MODEL_LESS,
  'POST /guardrail/*/version/*/apply': MODEL_LESS,
  'POST /guardrail-checks/invoke': MODEL_LESS,
})

export const bedrock: Dialect = {
  name: 'bedrock',
  family: 'bedrock',
  endpoint: (method, path) => {
    // By segment: an ARN model id holds a (decoded) slash.
    const [first, , action] = path.segments
    if (path.segments.length === 3 && first?.toLowerCase() === 'model' && ACTIONS.has(action?.toLowerCase() ?? '')) {
      return { kind: 'path', model: path.segments[1] ?? '', segment: 1, prefix: '', suffix: '' }
    }
    // GetAsyncInvoke: the invocation's ARN is one segment (its slash sent as %2F).
    if (method === 'GET' && path.segments.length === 2 && first?.toLowerCase() === 'async-invoke' && INVOCATION_ARN.test(path.segments[1] ?? '')) {
      return { kind: 'none', idSegment: 1 }
    }
    return endpoints(method, path.key, path) ?? UNLISTED
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
