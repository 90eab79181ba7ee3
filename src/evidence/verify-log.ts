// `geofence verify-log`: whether a log written with logging.integrity is the one the gateway
// wrote. Per chain, every line's `prev` must be the hash of the line before it (in `seq`
// order), every `seq` must appear once and in order, and every checkpoint's signature must
// verify with a given public key: it vouches for every line before it. The first line that was
// changed, removed, inserted or reordered is named (with the others after it), and so is a tail
// after the last checkpoint that no signature covers. One pass, streaming: the chain fields are
// read from the end of each line, where the writer put them; only genesis and checkpoint lines
// are parsed.
import type { SigningKey } from '../config/signing-keys.js'
import { verifyBytes } from '../config/signing-keys.js'
import { eachLineBytes, type LinePlace } from './lines.js'
import { CHAIN_CLOSED, CHAIN_STARTED, CHECKPOINT, checkpointMessage, checkpointRecord, lineHash, type CheckpointRecord } from './log-chain.js'

export type ProblemKind = 'changed' | 'removed' | 'inserted' | 'reordered' | 'forged' | 'truncated'

export interface Problem {
  kind: ProblemKind
  /** Where it shows (for a removal: the line after the gap). */
  place: LinePlace
  seq?: number
  message: string
}

export interface ChainReport {
  chain: string
  /** From the genesis line, when the files hold it. */
  start: { place: LinePlace, time: string, slot: string, pid: number, hostname: string, config: string, policy_revision: string, key: string, previous: { chain: string, seq: number, prev: string | null, closed: boolean } | null } | null
  lines: number
  first_seq: number
  last_seq: number
  /** Checkpoints whose signature verified. */
  checkpoints: number
  /** The last verified checkpoint's seq and place. */
  last_checkpoint: { seq: number, place: LinePlace } | null
  /** The chain ended with its closing checkpoint (a graceful stop). */
  closed: boolean
  /** Lines after the last verified checkpoint (none when the chain ended with its closing checkpoint). */
  unsigned_tail: number
  problems: Problem[]
  notes: string[]
}

export interface VerifyReport {
  files: string[]
  lines: number
  chains: ChainReport[]
  /** Lines in no chain (inserted, or written without logging.integrity). */
  unchained: Problem[]
  /** No problem in any chain, and no line outside one. */
  ok: boolean
}

export interface VerifyOptions {
  publicKeys: readonly SigningKey[]
  /** Lines of a checkpoint file: a chain that ends before its last recorded checkpoint was truncated. */
  checkpoints?: readonly CheckpointRecord[]
}

/** How far back reordered lines are matched to their predecessor's hash. */
const RECENT = 4096
const TAIL_BYTES = 160
const SUFFIX = /,"chain":"([0-9a-f]{1,64})","seq":(\d{1,15}),"prev":(null|"([0-9a-f]{64})")\}$/
const SPECIAL = /"msg":"(log chain started|log checkpoint|log chain closed)","chain":"[0-9a-f]+","seq":\d+,"prev":(?:null|"[0-9a-f]{64}")\}$/

interface Gap { from: number, to: number, after: LinePlace | null, before: LinePlace }

interface State {
  report: ChainReport
  expect: number
  lastHash: string | null
  lastPlace: LinePlace | null
  recent: Map<number, string>
  gaps: Gap[]
  /** Verified checkpoints: seq -> prev. */
  signed: Map<number, string | null>
  /** A second line with the last seq: which of the two is the inserted one, the next line's prev tells. */
  twin: { hash: string, place: LinePlace } | null
}

export async function verifyLog (files: readonly string[], opts: VerifyOptions): Promise<VerifyReport> {
  const keys = new Map(opts.publicKeys.map((k) => [k.id, k]))
  const chains = new Map<string, State>()
  const unchained: Problem[] = []
  let total = 0

  for (const file of files) {
    total += await eachLineBytes(file, (bytes, n) => {
      if (bytes.length === 0) return
      const place = { file, line: n }
      const tail = bytes.subarray(Math.max(0, bytes.length - TAIL_BYTES)).toString('latin1')
      const m = SUFFIX.exec(tail)
      if (m === null) {
        unchained.push({ kind: 'inserted', place, message: `${at(place)} is in no chain (inserted, or written without logging.integrity)` })
        return
      }
      const chain = m[1] ?? ''
      const seq = Number(m[2])
      const prev = m[4] ?? null
      const hash = lineHash(bytes)
      let st = chains.get(chain)
      if (st === undefined) {
        st = {
          report: { chain, start: null, lines: 0, first_seq: seq, last_seq: seq, checkpoints: 0, last_checkpoint: null, closed: false, unsigned_tail: 0, problems: [], notes: [] },
          expect: seq,
          lastHash: null,
          lastPlace: null,
          recent: new Map(),
          gaps: [],
          signed: new Map(),
          twin: null,
        }
        chains.set(chain, st)
        if (seq !== 0) st.report.notes.push(`the first line in the files is seq ${seq} (${at(place)}): the lines before it are not in the files given`)
      }
      const r = st.report
      r.lines++
      r.unsigned_tail++
      const special = SPECIAL.exec(tail)?.[1]
      if (seq === st.expect) {
        const twin = st.twin
        st.twin = null
        if (twin !== null && (prev === st.lastHash || prev === twin.hash)) {
          // The one the next line does not follow was inserted.
          const inserted = prev === st.lastHash ? twin.place : st.lastPlace ?? twin.place
          problem(st, 'inserted', inserted, seq - 1, `${at(inserted)} was inserted: seq ${seq - 1} of this chain appears a second time, and the next line follows the other one`)
        } else if (st.lastPlace !== null && prev !== st.lastHash) {
          problem(st, 'changed', st.lastPlace, seq - 1, `${at(st.lastPlace)} (seq ${seq - 1}) was changed: its hash is not the prev of the next line (seq ${seq}, ${at(place)})`)
        } else if (st.lastPlace === null && seq === 0 && prev !== null) {
          problem(st, 'changed', place, seq, `${at(place)} (seq 0) was changed: a chain's first line has no prev`)
        }
        advance(st, seq, hash, place)
      } else if (seq > st.expect) {
        st.gaps.push({ from: st.expect, to: seq - 1, after: st.lastPlace, before: place })
        advance(st, seq, hash, place)
      } else {
        const gap = st.gaps.findIndex((g) => seq >= g.from && seq <= g.to)
        if (gap === -1) {
          if (seq === st.expect - 1 && st.twin === null) st.twin = { hash, place }
          else problem(st, 'inserted', place, seq, `${at(place)} was inserted: seq ${seq} of this chain appears a second time`)
          return
        }
        const g = st.gaps[gap] as Gap
        st.gaps.splice(gap, 1, ...[{ ...g, to: seq - 1 }, { ...g, from: seq + 1 }].filter((x) => x.from <= x.to))
        problem(st, 'reordered', place, seq, `${at(place)} (seq ${seq}) is out of order: it comes after seq ${st.expect - 1}`)
        const before = st.recent.get(seq - 1)
        if (before !== undefined && before !== prev) problem(st, 'changed', place, seq, `${at(place)} (seq ${seq}): its prev is not the hash of seq ${seq - 1}`)
        st.recent.set(seq, hash)
        return
      }
      if (special === undefined) return
      const line = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
      if (special === CHAIN_STARTED) {
        if (seq !== 0) problem(st, 'inserted', place, seq, `${at(place)}: a chain's start at seq ${seq}`)
        const s = (line['chain_start'] ?? {}) as Record<string, unknown>
        const previous = (s['previous'] ?? null) as NonNullable<ChainReport['start']>['previous']
        r.start = { place, time: String(line['time']), slot: String(s['slot']), pid: Number(line['pid']), hostname: String(line['hostname']), config: String(s['config']), policy_revision: String(s['policy_revision']), key: String(s['key']), previous }
        return
      }
      // A checkpoint: its signature covers (chain, seq, prev, closed).
      const cp = (line['checkpoint'] ?? {}) as { key?: unknown, signature?: unknown }
      const closed = special === CHAIN_CLOSED
      const key = typeof cp.key === 'string' ? keys.get(cp.key) : undefined
      if (key === undefined) {
        problem(st, 'forged', place, seq, `${at(place)} (seq ${seq}): a checkpoint signed by key ${String(cp.key)}, which is not a given public key`)
        return
      }
      if (typeof cp.signature !== 'string' || !verifyBytes(key, checkpointMessage(chain, seq, prev, closed), Buffer.from(cp.signature, 'base64'))) {
        problem(st, 'forged', place, seq, `${at(place)} (seq ${seq}): the checkpoint's signature does not verify with key ${key.id}`)
        return
      }
      r.checkpoints++
      r.last_checkpoint = { seq, place }
      r.unsigned_tail = 0
      r.closed = closed
      st.signed.set(seq, prev)
    })
  }

  for (const st of chains.values()) {
    const r = st.report
    if (st.twin !== null) problem(st, 'inserted', st.twin.place, r.last_seq, `${at(st.twin.place)} was inserted: seq ${r.last_seq} of this chain appears a second time`)
    for (const g of st.gaps) {
      const n = g.to - g.from + 1
      problem(st, 'removed', g.before, g.from, `${n === 1 ? `seq ${g.from} was` : `seq ${g.from}..${g.to} (${n} lines) were`} removed: between ${g.after === null ? 'the start' : at(g.after)} and ${at(g.before)}`)
    }
    // Lines after the closing checkpoint are not covered either.
    if (r.closed && r.last_checkpoint !== null && r.last_checkpoint.seq !== r.last_seq) r.closed = false
  }
  // A chain's start names the previous chain's last checkpoint: that chain must reach it.
  for (const st of chains.values()) {
    const previous = st.report.start?.previous
    if (previous == null) continue
    const before = chains.get(previous.chain)
    if (before === undefined) {
      st.report.notes.push(`it follows chain ${previous.chain} (its checkpoint at seq ${previous.seq}), which is not in the files given`)
      continue
    }
    checkReaches(before, previous, `chain ${st.report.chain}'s start (${at(st.report.start?.place ?? { file: '?', line: 0 })})`)
  }
  for (const c of opts.checkpoints ?? []) {
    const st = chains.get(c.chain)
    if (st !== undefined) checkReaches(st, c, 'the checkpoint file')
  }
  const reports = [...chains.values()].map((st) => {
    st.report.problems.sort((a, b) => order(a.place, b.place, files))
    return st.report
  })
  return { files: [...files], lines: total, chains: reports, unchained, ok: unchained.length === 0 && reports.every((r) => r.problems.length === 0) }
}

/** A checkpoint another record names (seq, prev) must be in the chain as it was signed. */
function checkReaches (st: State, named: { seq: number, prev: string | null }, who: string): void {
  const r = st.report
  const end = st.lastPlace ?? { file: '?', line: 0 }
  if (named.seq < r.first_seq) return
  if (r.last_seq < named.seq) {
    problem(st, 'truncated', end, r.last_seq + 1, `the chain was truncated: it ends at seq ${r.last_seq}, but ${who} names its checkpoint at seq ${named.seq}`)
    return
  }
  const signed = st.signed.get(named.seq)
  if (signed === undefined || signed !== named.prev) {
    problem(st, 'changed', end, named.seq, `${who} names a checkpoint at seq ${named.seq} with prev ${named.prev ?? 'null'}, which the chain does not hold as signed`)
  }
}

function advance (st: State, seq: number, hash: string, place: LinePlace): void {
  st.expect = seq + 1
  st.lastHash = hash
  st.lastPlace = place
  st.report.last_seq = seq
  st.recent.set(seq, hash)
  if (st.recent.size > RECENT) st.recent.delete(seq - RECENT)
}

function problem (st: State, kind: ProblemKind, place: LinePlace, seq: number, message: string): void {
  st.report.problems.push({ kind, place, seq, message })
}

function at (p: LinePlace): string {
  return `${p.file}:${p.line}`
}

function order (a: LinePlace, b: LinePlace, files: readonly string[]): number {
  return files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line
}

/** Records of a checkpoint file (lines that are not records are skipped). */
export async function readCheckpoints (file: string): Promise<CheckpointRecord[]> {
  const out: CheckpointRecord[] = []
  await eachLineBytes(file, (bytes) => {
    const r = checkpointRecord(bytes.toString('utf8'))
    if (r !== null) out.push(r)
  })
  return out
}

/** What a compliance officer reads: per chain, verified or the first problem and the rest. */
export function formatVerify (v: VerifyReport): string {
  const n = (x: number): string => x.toLocaleString('en-US')
  const out = [`verify-log: ${v.files.join(', ')}: ${n(v.lines)} lines, ${v.chains.length} chain${v.chains.length === 1 ? '' : 's'}`]
  for (const c of v.chains) {
    const s = c.start
    out.push('')
    out.push(`chain ${c.chain}${s === null ? '' : ` (${s.slot}, pid ${s.pid} on ${s.hostname}, started ${s.time}, ${s.config} revision ${s.policy_revision.slice(0, 12)}, key ${s.key})`}`)
    out.push(`  seq ${c.first_seq}..${c.last_seq}: ${n(c.lines)} lines, ${n(c.checkpoints)} checkpoint${c.checkpoints === 1 ? '' : 's'} verified${c.closed ? ', closed at a graceful stop' : ''}`)
    for (const note of c.notes) out.push(`  note: ${note}`)
    const [first, ...rest] = c.problems
    if (first === undefined) out.push('  no line was changed, removed, inserted or reordered')
    else {
      out.push(`  FIRST PROBLEM ${first.kind}: ${first.message}`)
      for (const p of rest.slice(0, 50)) out.push(`  ${p.kind}: ${p.message}`)
      if (rest.length > 50) out.push(`  ... and ${n(rest.length - 50)} more`)
    }
    if (!c.closed) {
      out.push(c.last_checkpoint === null
        ? `  UNSIGNED: no checkpoint verifies; none of its ${n(c.lines)} lines is covered by a signature`
        : `  UNSIGNED TAIL: ${n(c.unsigned_tail)} line${c.unsigned_tail === 1 ? '' : 's'} after the last checkpoint (seq ${c.last_checkpoint.seq}, ${at(c.last_checkpoint.place)}) ${c.unsigned_tail === 1 ? 'is' : 'are'} covered by no signature`)
      out.push('  the chain has no closing checkpoint: the process may still be running or have crashed, or the log was truncated')
    }
  }
  if (v.unchained.length > 0) {
    out.push('')
    out.push(`${n(v.unchained.length)} line${v.unchained.length === 1 ? '' : 's'} in no chain:`)
    for (const p of v.unchained.slice(0, 50)) out.push(`  ${p.message}`)
  }
  out.push('')
  out.push(v.ok ? 'result: verified' : 'result: TAMPERED (see above)')
  return `${out.join('\n')}\n`
}
