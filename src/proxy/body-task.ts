// What the gateway reads out of a request body, as one task that is plain data: the same
// function runs on the event loop for a small body and in a worker thread for a large one
// (proxy/body-pool.ts), so both paths make exactly the same checks. Refusals are thrown as
// GatewayErrors here; the worker sends them back as data.
import type { RouteFamily } from '../dialects/types.js'
import { GatewayError } from '../errors.js'
import { MODEL_FIELDS } from './model-fields.js'
import { readMultipart, type MultipartRead } from './multipart-model.js'
import { batchModels, bodyModels, lacksMember, modelsFromJsonBody, type FieldModel, type JsonModels } from './request-model.js'

export type BodyTask =
  /** The body's own top-level `field` and every model field; `optional`: a body without it may name none. */
  | { op: 'json', field: string, family: RouteFamily, optional: { with: string | undefined } | null }
  /** `requireModel`: a form without `model` is refused (else it is read as one without). */
  | { op: 'multipart', contentType: string | undefined, requireModel: boolean }
  /** An Anthropic message batch: every item's models. */
  | { op: 'batch', family: RouteFamily, maxItems: number }
  /** The body of an endpoint whose path names the model; `items`: a `requests` list (Gemini batchEmbedContents). */
  | { op: 'path', items: boolean, family: RouteFamily, maxItems: number }

export type BodyTaskResult =
  | { op: 'json', found: JsonModels }
  /** The body has no `field` (and has `optional.with`): it names a model the gateway cannot see. */
  | { op: 'json', lacks: true }
  | { op: 'multipart', form: MultipartRead }
  | { op: 'models', models: FieldModel[] }

export function runBodyTask (task: BodyTask, body: Buffer | undefined): BodyTaskResult {
  switch (task.op) {
    case 'json': {
      const fields = MODEL_FIELDS[task.family]
      try {
        return { op: 'json', found: modelsFromJsonBody(body, task.field, fields) }
      } catch (err) {
        // A body the endpoint lets do without the model (a stored prompt names it) carries one
        // the gateway cannot see; any other failure stands.
        if (task.optional === null || !lacksMember(body, task.field, task.optional.with)) throw err
        return { op: 'json', lacks: true }
      }
    }
    case 'multipart':
      return { op: 'multipart', form: readMultipart(body, task.contentType, task.requireModel) }
    case 'batch':
      return { op: 'models', models: batchModels(body, MODEL_FIELDS[task.family], task.maxItems) }
    case 'path':
      return { op: 'models', models: bodyModels(body, task.items, MODEL_FIELDS[task.family], task.maxItems) }
  }
}

/** A refusal as it crosses from a worker thread: its kind and message (never a stack or a cause). */
export interface TaskRefusal { refused: { kind: GatewayError['kind'], message: string } }

export function asTaskRefusal (err: unknown): TaskRefusal | null {
  return err instanceof GatewayError ? { refused: { kind: err.kind, message: err.message } } : null
}
