// A revision built from YAML in this process (the embedded database, no listener), for the
// tests of each pipeline stage on its own.
import { parseConfig } from '../../src/config/load.js'
import { GatewayError } from '../../src/errors.js'
import { beginRequest, type RequestHead } from '../../src/pipeline/request.js'
import type { RequestState } from '../../src/pipeline/state.js'
import { createRuntime, type Runtime } from '../../src/runtime.js'

export const UPSTREAMS = `
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
  openai: { url: "http://127.0.0.1:1/base", dialect: openai }
  sovereign: { url: "http://127.0.0.1:2", dialect: openai-compatible, strip_client_credentials: true, headers: { authorization: "Bearer held-key" } }
  gemini: { url: "http://127.0.0.1:3", dialect: gemini, strip_client_credentials: true }
  bedrock: { url: "http://127.0.0.1:4", dialect: bedrock }
  azure: { url: "http://127.0.0.1:5", dialect: azure-openai, model_aliases: { prod-4o: gpt-4o } }
`

export const POLICY = `
client_ip: { trusted_proxies: [127.0.0.1/32] }
groups:
  restricted: [CN, HK, MO, RU]
policy:
  default: block
  unknown_location: block
  unknown_model: block
  rules:
    - { name: mini-routed, upstreams: [openai], models: ["gpt-4o-mini"], deny: [group:restricted], action: { route: { upstream: sovereign, model: local-small } } }
    - { name: openai-frontier, upstreams: [openai, azure], models: ["gpt-*"], deny: [group:restricted], action: block }
    - { name: claude, models: ["claude-*"], deny: [group:restricted], action: block }
    - { name: gemini, upstreams: [gemini], models: ["gemini-*"], deny: [group:restricted], action: block }
    - { name: sovereign, upstreams: [sovereign], models: ["local-*"], deny: [], action: block }
`

export async function testRuntime (yaml = `${UPSTREAMS}${POLICY}`): Promise<Runtime> {
  return createRuntime(parseConfig('stages.yaml', Buffer.from(yaml), {}))
}

export const MAINLAND_CHINA = '114.114.114.114'
export const UNITED_STATES = '8.8.8.8'

/** A request from `ip` (forwarded by the trusted 127.0.0.1), through the stages before its body. */
export function begun (runtime: Runtime, method: string, url: string, ip: string, headers: RequestHead['headers'] = {}): { state: RequestState, head: RequestHead } {
  const head: RequestHead = { peer: '127.0.0.1', method, url, headers: { 'x-forwarded-for': ip, ...headers } }
  const { state, error } = beginRequest(runtime, head, 'test-decision')
  if (error !== null) throw error
  return { state, head }
}

/** The HTTP status of the GatewayError a stage refuses with, or "no error". */
export async function refusalStatus (fn: () => unknown): Promise<number | string> {
  try {
    await fn()
    return 'no error'
  } catch (e) {
    return e instanceof GatewayError ? e.status : `not a GatewayError: ${String(e)}`
  }
}
