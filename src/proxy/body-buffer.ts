// A body's bytes as they arrive (from the socket, or out of a decoder), kept without ever
// copying the whole body in one go: a small body is a list of chunks joined at its end (as
// Fastify's own reader does it); past LARGE_BODY_BYTES it moves, once, into a growable
// SharedArrayBuffer, and every later chunk is copied in as it comes. So no step costs the event
// loop more than one chunk's copy, and the body a worker thread reads (proxy/body-pool.ts) is
// the very memory the main thread forwards: shared, not cloned.

/** Past this many bytes a body is large: it takes a slot (server.max_concurrent_large_bodies) and is read off the main thread. */
export const LARGE_BODY_BYTES = 1024 * 1024

/** A growable SharedArrayBuffer (ES2024; Node 20 has it, the ES2022 lib this project compiles against does not declare it). */
type Growable = SharedArrayBuffer & { grow: (length: number) => void }
const Growable = SharedArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => Growable

export class BodyBuffer {
  private chunks: Buffer[] | null = []
  private shared: Growable | null = null
  private view: Buffer | null = null
  private size = 0

  /**
   * @param max the most bytes this body may hold (its limit); the shared memory is reserved up
   * to it and committed only as it fills.
   * @param expected a Content-Length, when one was declared: a large body takes that at once.
   */
  constructor (private readonly max: number, expected?: number) {
    if (expected !== undefined && expected > LARGE_BODY_BYTES && expected <= max) this.share(expected)
  }

  get length (): number { return this.size }

  /** Whether the body has grown past LARGE_BODY_BYTES. */
  get large (): boolean { return this.shared !== null }

  /** Adds a chunk; the caller has checked that it fits under `max`. */
  push (chunk: Buffer): void {
    const end = this.size + chunk.length
    if (this.chunks !== null && end > LARGE_BODY_BYTES) {
      const before = Buffer.concat(this.chunks, this.size)
      this.chunks = null
      this.share(Math.min(this.max, Math.max(end, 2 * LARGE_BODY_BYTES)))
      this.view!.set(before, 0)
    }
    if (this.chunks !== null) {
      this.chunks.push(chunk)
    } else {
      const shared = this.shared!
      if (end > shared.byteLength) {
        shared.grow(Math.min(this.max, Math.max(end, 2 * shared.byteLength)))
        this.view = Buffer.from(shared, 0, shared.byteLength)
      }
      this.view!.set(chunk, this.size)
    }
    this.size = end
  }

  /** The body: a Buffer over its shared memory when large, else its chunks joined. */
  bytes (): Buffer {
    if (this.chunks !== null) return Buffer.concat(this.chunks, this.size)
    return Buffer.from(this.shared!, 0, this.size)
  }

  private share (initial: number): void {
    // A growable SharedArrayBuffer reserves address space up to `max` and commits pages as it grows.
    this.shared = new Growable(initial, { maxByteLength: this.max })
    this.view = Buffer.from(this.shared, 0, initial)
  }
}
