// Real multipart/form-data parsers from the npm registry, each reading the same bytes as an
// upstream built on it would: @fastify/busboy (the gateway's former reader), busboy, formidable
// and undici's Response.formData() (Node's fetch). Each answers the fields and files it read, or
// the error it raised.
import { Readable, Writable } from 'node:stream'
import { Busboy as FastifyBusboy } from '@fastify/busboy'
import busboy from 'busboy'
import formidable from 'formidable'

export interface FormReading {
  /** [name, value] of each field, in order. */
  fields: Array<[string, string]>
  /** [name, filename, bytes] of each file, in order. */
  files: Array<[string, string, Buffer]>
}

export type FormParser = (body: Buffer, contentType: string) => Promise<FormReading>

async function collect (stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer))
  return Buffer.concat(chunks)
}

const fastifyBusboy: FormParser = async (body, contentType) => new Promise((resolve, reject) => {
  const out: FormReading = { fields: [], files: [] }
  const pending: Array<Promise<void>> = []
  const bb = new FastifyBusboy({ headers: { 'content-type': contentType } })
  bb.on('field', (name: string, value: string) => { out.fields.push([name, value]) })
  bb.on('file', (name: string, stream: NodeJS.ReadableStream, filename: string) => {
    pending.push(collect(stream).then((data) => { out.files.push([name, filename, data]) }))
  })
  bb.on('error', reject)
  bb.on('finish', () => { void Promise.all(pending).then(() => { resolve(out) }, reject) })
  bb.end(body)
})

const mscdexBusboy: FormParser = async (body, contentType) => new Promise((resolve, reject) => {
  const out: FormReading = { fields: [], files: [] }
  const pending: Array<Promise<void>> = []
  const bb = busboy({ headers: { 'content-type': contentType }, defParamCharset: 'utf8' })
  bb.on('field', (name, value) => { out.fields.push([name, value]) })
  bb.on('file', (name, stream, info) => {
    pending.push(collect(stream).then((data) => { out.files.push([name, info.filename ?? '', data]) }))
  })
  bb.on('error', reject)
  bb.on('close', () => { void Promise.all(pending).then(() => { resolve(out) }, reject) })
  bb.end(body)
})

const formidableParser: FormParser = async (body, contentType) => {
  const files = new Map<object, Buffer[]>()
  const form = formidable({
    allowEmptyFiles: true,
    minFileSize: 0,
    // Files are kept in memory, not written to a temporary directory.
    fileWriteStreamHandler: (file) => {
      const chunks: Buffer[] = []
      if (file !== undefined) files.set(file, chunks)
      return new Writable({ write (chunk: Buffer, _enc, cb) { chunks.push(chunk); cb() } })
    },
  })
  const req = Object.assign(Readable.from([body]), { headers: { 'content-type': contentType, 'content-length': String(body.length) } })
  const [fields, parsedFiles] = await form.parse(req as unknown as Parameters<typeof form.parse>[0])
  const out: FormReading = { fields: [], files: [] }
  for (const [name, values] of Object.entries(fields)) for (const v of values ?? []) out.fields.push([name, v])
  for (const [name, list] of Object.entries(parsedFiles)) {
    for (const f of list ?? []) out.files.push([name, f.originalFilename ?? '', Buffer.concat(files.get(f) ?? [])])
  }
  return out
}

const undiciFormData: FormParser = async (body, contentType) => {
  const data = await new Response(new Blob([new Uint8Array(body)]), { headers: { 'content-type': contentType } }).formData()
  const out: FormReading = { fields: [], files: [] }
  for (const [name, value] of data.entries()) {
    if (typeof value === 'string') out.fields.push([name, value])
    else out.files.push([name, value.name, Buffer.from(await value.arrayBuffer())])
  }
  return out
}

export const FORM_PARSERS: ReadonlyArray<[string, FormParser]> = [
  ['@fastify/busboy', fastifyBusboy],
  ['busboy', mscdexBusboy],
  ['formidable', formidableParser],
  ['undici formData()', undiciFormData],
]

/** A reading in one order (parsers report fields and files in different orders), for comparison. */
export function sorted (r: FormReading): { fields: string[], files: string[] } {
  return {
    fields: r.fields.map(([n, v]) => `${n}=${v}`).sort(),
    files: r.files.map(([n, f, d]) => `${n}:${f}:${d.toString('base64')}`).sort(),
  }
}

/** Every parser's reading of the bytes, or its error message. */
export async function readAll (body: Buffer, contentType: string): Promise<Array<{ parser: string, reading?: FormReading, error?: string }>> {
  const out = []
  for (const [parser, parse] of FORM_PARSERS) {
    try {
      out.push({ parser, reading: await parse(body, contentType) })
    } catch (err) {
      out.push({ parser, error: (err as Error).message })
    }
  }
  return out
}
