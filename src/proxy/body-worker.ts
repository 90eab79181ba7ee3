// The worker thread's side of proxy/body-pool.ts: one body task run on a body it shares with
// the main thread. A refusal goes back as data; a form re-encoded goes back in shared memory.
import { GatewayError } from '../errors.js'
import { asTaskRefusal, runBodyTask, type BodyTask, type BodyTaskResult, type TaskRefusal } from './body-task.js'

export interface WorkerTask {
  task: BodyTask
  body: SharedArrayBuffer
  length: number
}

/** A result as it crosses back: a multipart form's body is handed over as shared memory, not cloned. */
export type WorkerResult =
  | Exclude<BodyTaskResult, { op: 'multipart' }>
  | { op: 'multipart', model: string | undefined, contentType: string, body: SharedArrayBuffer }
  | TaskRefusal

export default function readBodyTask ({ task, body, length }: WorkerTask): WorkerResult {
  try {
    const result = runBodyTask(task, Buffer.from(body, 0, length))
    if (result.op !== 'multipart') return result
    const { form } = result
    const out = new SharedArrayBuffer(form.body.length)
    form.body.copy(Buffer.from(out))
    return { op: 'multipart', model: form.model, contentType: form.contentType, body: out }
  } catch (err) {
    const refusal = asTaskRefusal(err)
    if (refusal !== null) return refusal
    throw new GatewayError('internal', 'the body reader failed', { cause: err })
  }
}
