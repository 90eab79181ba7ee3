// Starts the real gateway in this process on a loopback port, with its log lines captured.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway, type RunningGateway, type StartOptions } from '../../src/server.js'

export interface TestGateway extends RunningGateway {
  /** Every log line written so far, parsed. */
  logs: () => Array<Record<string, unknown>>
  /** The decision lines only. */
  decisions: () => Array<Record<string, unknown>>
  /** The raw text of every log line, for "this never appears" checks. */
  rawLogs: () => string
}

/** Writes a config to a fresh directory; without an admin section it gets one on a free port. */
export function writeConfig (yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'geofence-test-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, /^admin:/m.test(yaml) ? yaml : `${yaml}\nadmin: { host: 127.0.0.1, port: 0 }\n`)
  return file
}

/** A config with both dialects pointed at `upstreamUrl`; `extra` is appended (YAML). */
export function baseConfig (upstreamUrl: string, opts: { host?: string, trusted?: string[], rules?: string, policy?: string } = {}): string {
  return `
server: { host: "${opts.host ?? '127.0.0.1'}", port: 0, body_limit: 1mb }
client_ip:
  trusted_proxies: ${JSON.stringify(opts.trusted ?? ['127.0.0.1/32', '::1/128'])}
groups:
  restricted: [CN, HK, MO, RU, BY, IR, KP, CU, SY]
upstreams:
  anthropic: { url: "${upstreamUrl}", dialect: anthropic }
  openai: { url: "${upstreamUrl}", dialect: openai }
policy:
  mode: enforce
  default: block
  unknown_location: block
${opts.policy ?? ''}
  rules:
${opts.rules ?? `    - name: anthropic-frontier
      upstreams: [anthropic]
      models: ["claude-*"]
      deny: [group:restricted]
      action: block
    - name: openai-frontier
      upstreams: [openai]
      models: ["gpt-*"]
      deny: [group:restricted]
      action: block`}
`
}

export async function startTestGateway (yaml: string, opts: StartOptions & { file?: string } = {}): Promise<TestGateway> {
  const lines: string[] = []
  const destination = { write: (s: string) => { lines.push(s) } }
  const gw = await startGateway(opts.file ?? writeConfig(yaml), { ...opts, destination })
  const logs = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  return {
    app: gw.app,
    admin: gw.admin,
    get runtime () { return gw.runtime },
    logger: gw.logger,
    metrics: gw.metrics,
    url: gw.url,
    adminUrl: gw.adminUrl,
    reload: gw.reload,
    close: gw.close,
    logs,
    decisions: () => logs().filter((l) => l['msg'] === 'decision'),
    rawLogs: () => lines.join(''),
  }
}
