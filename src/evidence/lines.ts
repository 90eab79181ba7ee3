// Log files read line by line, streaming: memory stays flat whatever the log's size. A manual
// splitter over 1 MiB reads (readline costs an event per line): each read is cut at its last
// newline, so that a UTF-8 sequence is never split (0x0A is never part of one), and what follows
// is carried into the next read. `-` reads standard input.
import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'

const READ_SIZE = 1 << 20
const NEWLINE = 0x0a

/** Where a line is: the file as given and its 1-based line number. */
export interface LinePlace {
  file: string
  line: number
}

function open (file: string): Readable {
  return file === '-' ? process.stdin : createReadStream(file, { highWaterMark: READ_SIZE })
}

/**
 * Calls `each` with every line of `file` as bytes (without its newline; a trailing `\r` is
 * kept: the bytes are what was written). The Buffer is only valid during the call.
 */
export async function eachLineBytes (file: string, each: (bytes: Buffer, line: number) => void): Promise<number> {
  let carry: Buffer | null = null
  let n = 0
  for await (const chunk of open(file) as AsyncIterable<Buffer>) {
    const buf: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk])
    let start = 0
    for (let nl = buf.indexOf(NEWLINE, start); nl !== -1; nl = buf.indexOf(NEWLINE, start)) {
      each(buf.subarray(start, nl), ++n)
      start = nl + 1
    }
    // Copied: the rest of a 1 MiB read must not keep the whole read alive.
    carry = start === buf.length ? null : Buffer.from(buf.subarray(start))
  }
  if (carry !== null && carry.length > 0) each(carry, ++n)
  return n
}

/**
 * Calls `each` with every line of `file` as text (UTF-8, without its newline or a trailing
 * `\r`). Each read is decoded once and split as a string: no Buffer per line.
 */
export async function eachLine (file: string, each: (text: string, line: number) => void): Promise<number> {
  let carry: Buffer | null = null
  let n = 0
  const emit = (text: string): void => {
    let start = 0
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl
      each(text.slice(start, end), ++n)
      start = nl + 1
    }
  }
  for await (const chunk of open(file) as AsyncIterable<Buffer>) {
    const last = chunk.lastIndexOf(NEWLINE)
    if (last === -1) {
      carry = carry === null ? Buffer.from(chunk) : Buffer.concat([carry, chunk])
      continue
    }
    let from = 0
    if (carry !== null) {
      // The line the previous read left open is completed on its own, not by copying this read.
      const first = chunk.indexOf(NEWLINE)
      emit(Buffer.concat([carry, chunk.subarray(0, first + 1)]).toString('utf8'))
      from = first + 1
    }
    if (from <= last) emit(chunk.toString('utf8', from, last + 1))
    carry = last + 1 === chunk.length ? null : Buffer.from(chunk.subarray(last + 1))
  }
  if (carry !== null && carry.length > 0) emit(`${carry.toString('utf8')}\n`)
  return n
}
