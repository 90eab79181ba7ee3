// A small fixed pool of worker threads (piscina) that read large bodies (proxy/body-task.ts), so
// that parsing and checking a body of many megabytes never holds up the event loop. The body
// is shared with the worker (a SharedArrayBuffer, proxy/body-buffer.ts), never copied; only
// what was read (the models, a refusal) comes back. Threads start on the first large body and
// leave when idle; piscina itself is loaded with the first large body, not at start. Each has a heap bound, so a body whose parse would take more memory than
// its limit accounts for is refused, not allowed to grow the process.
import { availableParallelism } from 'node:os'
import type { Piscina } from 'piscina'
import { GatewayError } from '../errors.js'
import type { BodyTask, BodyTaskResult } from './body-task.js'
import type { WorkerResult, WorkerTask } from './body-worker.js'

const WORKER = new URL(import.meta.url.endsWith('.ts') ? './body-worker.ts' : './body-worker.js', import.meta.url)

/** A thread leaves after this long without a body to read. */
const IDLE_MS = 30_000

export class BodyPool {
  private pool: Promise<Piscina<WorkerTask, WorkerResult>> | null = null

  /**
   * @param tasks how many bodies may be read at once (server.max_concurrent_large_bodies): the
   * threads are that many at most, and one core is left to the event loop.
   * @param maxBody the largest body limit: each thread's heap is bounded at a few times it.
   */
  constructor (private readonly tasks: number, private readonly maxBody: number) {}

  private async threads (): Promise<Piscina<WorkerTask, WorkerResult>> {
    this.pool ??= import('piscina').then(({ Piscina }) => new Piscina<WorkerTask, WorkerResult>({
      filename: WORKER.href,
      minThreads: 0,
      maxThreads: Math.max(1, Math.min(this.tasks, availableParallelism() - 1)),
      idleTimeout: IDLE_MS,
      resourceLimits: { maxOldGenerationSizeMb: Math.max(256, Math.ceil(4 * this.maxBody / (1024 * 1024))) },
    }))
    return this.pool
  }

  async run (task: BodyTask, body: Buffer): Promise<BodyTaskResult> {
    const shared = body.buffer instanceof SharedArrayBuffer && body.byteOffset === 0 ? body.buffer : copyToShared(body)
    let result: WorkerResult
    try {
      result = await (await this.threads()).run({ task, body: shared, length: body.length })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        throw new GatewayError('too_large', 'the request body takes more memory to read than the gateway gives one body', { cause: err })
      }
      throw new GatewayError('internal', 'the body reader failed', { cause: err })
    }
    if ('refused' in result) throw new GatewayError(result.refused.kind, result.refused.message)
    if (result.op !== 'multipart') return result
    return { op: 'multipart', form: { model: result.model, contentType: result.contentType, body: Buffer.from(result.body) } }
  }

  async close (): Promise<void> {
    if (this.pool !== null) await (await this.pool).destroy()
  }
}

/** A body that did not arrive through a BodyBuffer (none should): copied once into shared memory. */
function copyToShared (body: Buffer): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(body.length)
  body.copy(Buffer.from(shared))
  return shared
}
