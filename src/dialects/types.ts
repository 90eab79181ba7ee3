// What the gateway must know of a provider API: where a request names its model, and how the
// provider shapes an error so that its official SDK raises its usual typed error.
import type { ErrorKind } from '../errors.js'
import type { DialectName } from '../config/schema.js'

export interface Dialect {
  name: DialectName
  /** POST endpoints (path below the upstream's mount, no query) whose JSON body names the model at top level. */
  modelEndpoints: ReadonlySet<string>
  /** POST endpoints whose multipart/form-data body names the model in a `model` field (OpenAI audio, image edits). */
  multipartEndpoints?: ReadonlySet<string>
  /** POST endpoints whose body is a batch of requests, each naming its model (Anthropic batches). */
  batchEndpoints?: ReadonlySet<string>
  /** The model a path names, with its position in the path (Gemini); undefined when it names none. */
  pathModel?: (path: string) => { model: string, start: number, end: number } | undefined
  /** The id the policy matches for a model as the API writes it (Gemini: "models/x" -> "x"). */
  policyModel?: (model: string) => string
  /** The response body for an error of this kind, in the provider's own shape. */
  renderError: (kind: ErrorKind, message: string, decisionId: string) => unknown
}
