// Large bodies (past LARGE_BODY_BYTES) are the ones that cost: memory up to their limit, and a
// parse of many milliseconds. At most server.max_concurrent_large_bodies of them are read at
// once; one more is refused at once (503 overloaded, with Retry-After) rather than queued
// without bound, so that a few clients sending large or compressed bodies cannot take the
// gateway's memory or its threads from the rest. A request takes its slot when it is known to
// be large (its Content-Length, its bytes as they arrive, or its decoded size) and gives it
// back once its body has been read and decided, before it is forwarded.
import { GatewayError } from '../errors.js'
import { BodyPool } from '../proxy/body-pool.js'
import type { BodyTask, BodyTaskResult } from '../proxy/body-task.js'

/** One request's claim on a slot. */
export interface LargeBodyLease {
  /** Takes a slot, once; throws the 503 when none is free. */
  take: () => void
  /** Gives the slot back (any number of times). */
  release: () => void
  /** Reads a large body off the event loop. */
  read: (task: BodyTask, body: Buffer) => Promise<BodyTaskResult>
}

export class LargeBodies {
  private held = 0
  private readonly pool: BodyPool

  constructor (private readonly capacity: number, maxBody: number) {
    this.pool = new BodyPool(capacity, maxBody)
  }

  /** Slots in use now. */
  get inUse (): number { return this.held }

  lease (): LargeBodyLease {
    let holds = false
    return {
      take: () => {
        if (holds) return
        if (this.held >= this.capacity) {
          throw new GatewayError('overloaded', `the gateway is already reading server.max_concurrent_large_bodies (${this.capacity}) large request bodies; retry shortly`)
        }
        this.held++
        holds = true
      },
      release: () => {
        if (!holds) return
        holds = false
        this.held--
      },
      read: async (task, body) => this.pool.run(task, body),
    }
  }

  async close (): Promise<void> {
    await this.pool.close()
  }
}
