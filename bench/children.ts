// The benchmark's child processes, shared by bench/run.ts and bench/ab.ts: CPU pinning, the
// fake upstream and the bare proxy (each prints its port), and the gateway from a checkout's
// dist/ (its decision lines to a file, as they would go to a log pipeline), each timed from
// spawn to ready. Every child is killed when the benchmark exits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * On a machine with two or more cores the server under test gets a core of its own (CPU 1),
 * and the benchmark itself (the load generator) and the fake upstream share CPU 0: the figures
 * then measure what the proxy costs, not how three processes fight over two cores.
 */
export const PIN = os.cpus().length >= 2 && spawnSync('taskset', ['-p', '-c', '0', String(process.pid)]).status === 0

export const tmp = mkdtempSync(join(os.tmpdir(), 'geofence-bench-'))

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

export interface Child {
  child: ChildProcess
  port: number
  /** Milliseconds from spawn to ready (the port line, or the gateway's "listening" line). */
  readyMs: number
}

function spawnPinned (cpu: number | 'all', argv: string[], opts: Parameters<typeof spawn>[2]): ChildProcess {
  const [cmd, args] = PIN && cpu !== 'all' ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0] ?? '', argv.slice(1)]
  const child = spawn(cmd, args, opts)
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  return child
}

/** A script that prints its port on its first line of stdout, run with plain node (`.mjs`) or tsx (`.ts`). */
export async function startScript (file: string, args: string[], cpu: number, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const started = process.hrtime.bigint()
  const argv = file.endsWith('.ts') ? [process.execPath, '--import', 'tsx', file, ...args] : [process.execPath, file, ...args]
  const child = spawnPinned(cpu, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => { reject(new Error(`${file} exited with ${String(code)}`)) })
  })
  return { child, port: Number(line), readyMs: Number(process.hrtime.bigint() - started) / 1e6 }
}

/** A plain node script on `cpu`, to its end: what it printed on stdout. */
export async function runScript (file: string, args: string[], cpu: number, nodeArgs: string[] = []): Promise<string> {
  const child = spawnPinned(cpu, [process.execPath, ...nodeArgs, file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => { if (code === 0) resolve(out); else reject(new Error(`${file} exited with ${String(code)}`)) })
  })
}

/** The benchmark's gateway config: one Anthropic upstream, a rule that blocks HK, CN and KP. */
export function gatewayConfig (upstreamPort: number, opts: { workers?: number, cacheEntries?: number } = {}): string {
  const file = join(tmp, `gateway-${process.hrtime.bigint()}.yaml`)
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 0, body_limit: 32mb, workers: ${opts.workers ?? 1} }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
geoip: { cache: { max_entries: ${opts.cacheEntries ?? 100_000}, ttl: 1h } }
upstreams:
  anthropic: { url: "http://127.0.0.1:${upstreamPort}", dialect: anthropic }
policy:
  default: block
  unknown_location: allow
  rules:
    - { name: frontier, upstreams: [anthropic], models: ["claude-*"], deny: [HK, CN, KP], action: block }
    - { name: open, upstreams: [anthropic], models: ["open-*"], deny: [], action: block }
`)
  return file
}

/**
 * The gateway built in `checkout` (its dist/), serving `config`, pinned to `cpu`. It is ready
 * when it has logged "listening" (after every database is open and both ports listen); the log
 * file is polled every 2 ms until then, so the start-up time has that resolution.
 */
export async function startGateway (checkout: string, config: string, opts: { cpu?: number | 'all', workers?: number, nodeArgs?: string[] } = {}): Promise<Child> {
  const log = join(tmp, `gateway-${process.hrtime.bigint()}.log`)
  const fd = openSync(log, 'w')
  const started = process.hrtime.bigint()
  const child = spawnPinned(opts.cpu ?? 1, [process.execPath, ...(opts.nodeArgs ?? []), join(checkout, 'dist/cli.js'), 'serve', '--config', config], { cwd: checkout, stdio: ['ignore', fd, 'inherit'] })
  closeSync(fd)
  const workers = opts.workers ?? 1
  const reader = openSync(log, 'r')
  try {
    const head = Buffer.alloc(64 * 1024)
    for (;;) {
      const n = readSync(reader, head, 0, head.length, 0)
      const listening = head.toString('utf8', 0, n).split('\n').filter((l) => l.includes('"msg":"listening"'))
      if (listening.length >= workers) {
        const readyMs = Number(process.hrtime.bigint() - started) / 1e6
        return { child, port: Number(new URL(JSON.parse(listening[0] ?? '{}').url as string).port), readyMs }
      }
      if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}: ${readFileSync(log, 'utf8').slice(0, 2000)}`)
      if (Number(process.hrtime.bigint() - started) > 30e9) throw new Error('the gateway did not start within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  } finally {
    closeSync(reader)
  }
}

/** Stop a child and wait for it to be gone. */
export async function stop (c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return
  const gone = new Promise((resolve) => c.child.once('exit', resolve))
  c.child.kill('SIGKILL')
  await gone
}

/** Resident set size of a process now, in MiB (Linux /proc). */
export function rssMiB (pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) / 1024
  } catch { return 0 }
}

/** The median of `values` (0 for none). */
export function median (values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return 0
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] ?? 0 : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

/** The p-th percentile of `values` (nearest rank). */
export function percentile (values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0
}
