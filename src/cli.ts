#!/usr/bin/env node
// geofence: serve | validate | explain. Exit status 0 on success, 2 for a bad config or bad
// arguments (nothing starts), 1 for anything unexpected.
import cluster from 'node:cluster'
import { parseArgs } from 'node:util'
import { readFile } from 'node:fs/promises'
import { buffer } from 'node:stream/consumers'
import { ConfigError } from './errors.js'
import type { ExplainRequest } from './explain.js'
import type { Change, ReplayReport } from './evidence/replay.js'
import type { VerifyReport } from './evidence/verify-log.js'
import type { SigningKey } from './config/signing-keys.js'
import type { BootstrapConfig } from './config/load.js'

// Each command loads what it needs when it runs: `serve` starts without the modules of the
// other commands (explain, replay, verify-log, sign, the cluster's primary), and the gateway
// itself loads what only some configurations need when a revision first needs it.
const FAIL_ON = new Set(['newly-blocked', 'newly-allowed', 'newly-routed', 'changed'])

const HELP = `geofence: a geofencing gateway in front of LLM provider APIs

Usage:
  geofence serve --config FILE
      Start the gateway. The config and every database are checked first;
      on any problem nothing listens and the exit status is 2.
  geofence validate FILE
      Check a config file (and open its databases). Prints every problem with
      file:line:col and the key path; exit status 0 when valid, 2 otherwise.
  geofence explain --config FILE --ip IP --model MODEL [--upstream NAME] [--client NAME] [--json]
      The decision the gateway would take for a caller at IP asking for MODEL
      (as client NAME, where the config authenticates clients), and why. Without --upstream: the only upstream, or the first upstream named
      by the first rule whose models list matches MODEL. --json prints one JSON object.
  geofence explain --config FILE --ip IP --request "METHOD /UPSTREAM/PATH" [--header "NAME: VALUE"]... [--body FILE|-] [--client NAME] [--json]
      The same for a whole request, read exactly as serve reads it: the path decoded,
      the endpoint, the model from the path, the body (decoded from its
      Content-Encoding), a multipart field or a batch, and its canonical id.
      Either form takes the end user's identity: --identity '{"ctry":"HK"}' (claims
      as a token carries them, mapped as the issuer's config says) or --token FILE
      (verified as serve verifies it); the output shows each source's verdict.
  geofence test FILE...
      Run policy test files (YAML: config: PATH, cases: [{ name, ip, model,
      upstream?, client?, identity?: { claims }, expect: allow | block | route:MODEL }];
      a case may give request: "METHOD /upstream/path", headers?, body? instead of model). Prints each failure with
      the decision it got and why, then "N passed, N failed". Exit status 1 on any
      failure or when there are no cases, 2 when a file cannot be read.
  geofence replay --config CANDIDATE.yaml --log FILE... [--databases FILE]... [--json]
                  [--fail-on newly-blocked|newly-allowed|newly-routed|changed]
      Every decision the log files recorded (- reads standard input), decided again
      under the candidate policy: what was recorded (location, identity, client,
      endpoint, models) is held fixed; with --databases, callers whose full address
      was logged are located again. Prints what is unchanged, newly blocked, newly
      allowed and newly routed (by rule, model, country and client) and the decision
      ids of the changed ones; --json prints one object. Exit status 1 when a
      --fail-on kind (a comma list, or repeated) occurred, 2 on a bad config or a
      log line of an unknown schema.
  geofence sign --key KEY FILE
      Sign a config for policy_signature: writes FILE.sig, a signature (Ed25519 or
      ECDSA P-256, KEY a PKCS#8 PEM private key) over FILE's bytes and those of the
      trust files it names (jwks_file, TLS CA files).
  geofence verify-log FILE... --public-key FILE [--checkpoints FILE] [--json]
      Whether a log written with logging.integrity is the one the gateway wrote: per
      chain (one per process), the first line that was changed, removed, inserted or
      reordered, checkpoints whose signature does not verify with a given public key
      (repeat --public-key for several), and lines after the last checkpoint that no
      signature covers. --checkpoints: the checkpoint file, to see a truncated chain.
      Exit status 0 when verified, 1 when tampered, 2 when a file cannot be read.
  geofence groups [--json]
      The built-in jurisdiction groups, with their source and date.
  geofence --version (or -v)
      The version, as package.json gives it.
  geofence --help
      This text.
`

class UsageError extends Error {}

/** `--request "POST /anthropic/v1/messages"`, `--header "content-type: application/json"`, `--body FILE` (- for stdin). */
async function requestToExplain (line: string, headerLines: readonly string[], bodyFile: string | undefined): Promise<ExplainRequest> {
  const m = /^([A-Za-z]+)\s+(\S+)$/.exec(line.trim())
  if (m === null) throw new UsageError(`--request takes "METHOD /upstream/path?query", not "${line}"`)
  const headers: Record<string, string> = {}
  for (const h of headerLines) {
    const colon = h.indexOf(':')
    if (colon <= 0) throw new UsageError(`--header takes "name: value", not "${h}"`)
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim()
  }
  const body = bodyFile === undefined ? undefined : bodyFile === '-' ? await buffer(process.stdin) : await readFile(bodyFile)
  return { method: (m[1] ?? '').toUpperCase(), url: m[2] ?? '/', headers, body }
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true })
      if (values.config === undefined) throw new UsageError('serve needs --config FILE')
      const [{ loadBootstrap }, { loadCheckedConfig }] = await Promise.all([import('./config/load.js'), import('./runtime.js')])
      // A bootstrap file (policy_source) holds what the primary needs; the workers fetch the policy.
      const bootstrap = await loadBootstrap(values.config)
      const config = bootstrap ?? await loadCheckedConfig(values.config)
      if (config.server.workers > 1 && cluster.isPrimary) {
        // Refuse to start here, with one line, rather than let every worker fail and be replaced.
        if (bootstrap !== null) await firstPolicy(values.config, bootstrap)
        const { runPrimary } = await import('./cluster.js')
        await runPrimary(config)
        return -1
      }
      const { startGateway } = await import('./server.js')
      const gw = await startGateway(values.config, { admin: !cluster.isWorker, ...await workerPolicyKeys() })
      if (cluster.isWorker) {
        const [{ AggregatorRegistry }, { READY_MESSAGE }] = await Promise.all([import('prom-client'), import('./cluster.js')])
        // prom-client answers the primary's metric requests from listeners that only its
        // AggregatorRegistry constructor installs, so a worker constructs one too.
        AggregatorRegistry.setRegistries([gw.metrics.registry])
        void new AggregatorRegistry()
        process.send?.(READY_MESSAGE)
      }
      const stop = (signal: string): void => {
        gw.logger.info({ signal }, 'shutting down')
        gw.close().then(() => process.exit(0), (err: unknown) => { gw.logger.error({ err }, 'shutdown failed'); process.exit(1) })
      }
      process.once('SIGTERM', () => { stop('SIGTERM') })
      process.once('SIGINT', () => { stop('SIGINT') })
      process.on('SIGHUP', () => { void gw.reload('SIGHUP') })
      return -1 // keep running
    }
    case 'validate': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true })
      const file = positionals[0]
      if (file === undefined || positionals.length > 1) throw new UsageError('validate takes one FILE')
      const [{ loadBootstrap }, { createRuntime, loadCheckedConfig }] = await Promise.all([import('./config/load.js'), import('./runtime.js')])
      const bootstrap = await loadBootstrap(file)
      if (bootstrap !== null) {
        // Nothing is fetched: the published policy is validated as a file of its own.
        const { policySource: src } = bootstrap
        process.stdout.write(`${file}: valid bootstrap (signed by key ${bootstrap.policyKey ?? 'none'}); the policy is fetched from ${src.url} every ${src.pollMs / 1000}s${src.cacheDir === null ? '' : `, the last approved copy kept in ${src.cacheDir}`}; validate the published policy itself with geofence validate POLICY.yaml\n`)
        return 0
      }
      const runtime = await createRuntime(await loadCheckedConfig(file), { identityKeys: false })
      const signed = runtime.config.policyKey === null ? '' : `, signed by key ${runtime.config.policyKey}`
      process.stdout.write(`${file}: valid (policy revision ${runtime.policy.revision}${signed})\n`)
      return 0
    }
    case 'explain': {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          config: { type: 'string', short: 'c' },
          ip: { type: 'string' },
          model: { type: 'string' },
          upstream: { type: 'string' },
          client: { type: 'string' },
          request: { type: 'string' },
          header: { type: 'string', multiple: true },
          body: { type: 'string' },
          identity: { type: 'string' },
          token: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      })
      if (values.config === undefined || values.ip === undefined || (values.model === undefined) === (values.request === undefined)) {
        throw new UsageError('explain needs --config FILE --ip IP and either --model MODEL or --request "METHOD /upstream/path"')
      }
      if (values.identity !== undefined && values.token !== undefined) throw new UsageError('explain takes --identity CLAIMS or --token FILE, not both')
      const [{ explain, explainRequest, formatExplanation, identityOf }, { loadRuntime }] = await Promise.all([import('./explain.js'), import('./runtime.js')])
      const given = values.identity !== undefined
        ? { claims: claimsArgument(values.identity) }
        : values.token === undefined ? undefined : { token: await readFile(values.token, 'utf8') }
      let result: Awaited<ReturnType<typeof explain>>
      if (values.request === undefined) {
        result = await explain(values.config, values.ip, values.model ?? '', values.upstream, values.client, given)
      } else {
        const runtime = await loadRuntime(values.config, { identityKeys: given !== undefined && 'token' in given, policyKeys: null })
        const identity = await identityOf(runtime, given)
        result = 'problem' in identity ? identity : await explainRequest(runtime, values.ip, await requestToExplain(values.request, values.header ?? [], values.body), values.client, identity.identity)
        runtime.identity?.close()
      }
      if ('problem' in result) throw new UsageError(result.problem)
      process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : formatExplanation(result))
      return 0
    }
    case 'test': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true })
      if (positionals.length === 0) throw new UsageError('test needs at least one FILE')
      const { formatResults, runPolicyTests } = await import('./policy-test.js')
      const results = await runPolicyTests(positionals)
      process.stdout.write(formatResults(results))
      return results.length === 0 || results.some((r) => !r.ok) ? 1 : 0
    }
    case 'replay': {
      const { values, positionals } = parseArgs({
        args: rest,
        strict: true,
        allowPositionals: true,
        options: {
          config: { type: 'string', short: 'c' },
          log: { type: 'string', multiple: true },
          databases: { type: 'string', multiple: true },
          json: { type: 'boolean', default: false },
          'fail-on': { type: 'string', multiple: true },
        },
      })
      const logs = [...(values.log ?? []), ...positionals]
      if (values.config === undefined || logs.length === 0) throw new UsageError('replay needs --config CANDIDATE.yaml and --log FILE (one or more)')
      const failOn = (values['fail-on'] ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')
      for (const f of failOn) {
        if (!FAIL_ON.has(f)) throw new UsageError(`--fail-on takes ${[...FAIL_ON].join(', ')}, not "${f}"`)
      }
      const [{ loadConfig }, { createRuntime }, { candidateLocator, formatReplay, replay }, { ReplayError }, { DatabaseError }] = await Promise.all([
        import('./config/load.js'), import('./runtime.js'), import('./evidence/replay.js'), import('./evidence/decision-line.js'), import('./geo/databases.js'),
      ])
      // The candidate is replayed before it is signed: its signature is not checked.
      const candidate = await createRuntime(await loadConfig(values.config, process.env, { policyKeys: null }), { identityKeys: false })
      let report: ReplayReport
      try {
        const locator = values.databases === undefined ? undefined : await candidateLocator(candidate, values.databases.flatMap((d) => d.split(',')))
        report = await replay(logs, candidate, locator === undefined ? {} : { locator })
      } catch (err) {
        // A line of an unknown schema, a database or a log file that cannot be read: exit 2, said plainly.
        if (err instanceof ReplayError || err instanceof DatabaseError || typeof (err as NodeJS.ErrnoException).code === 'string') throw new UsageError((err as Error).message)
        throw err
      }
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReplay(report))
      const failed = failOn.some((f) => (f === 'changed' ? report.changed.length : report[f.replace('-', '_') as Change]) > 0)
      return failed ? 1 : 0
    }
    case 'sign': {
      const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { key: { type: 'string' } } })
      const file = positionals[0]
      if (values.key === undefined || file === undefined || positionals.length > 1) throw new UsageError('sign needs --key KEY and one config FILE')
      const [{ readPrivateKey }, { signPolicy }] = await Promise.all([import('./config/signing-keys.js'), import('./config/policy-signature.js')])
      const key = readPrivateKey(`file:${values.key}`)
      if ('problem' in key) throw new UsageError(`--key ${values.key}: ${key.problem}`)
      const signed = await signPolicy(file, key)
      if ('problem' in signed) throw new UsageError(`cannot sign ${file}: ${signed.problem}`)
      const covered = signed.signature.files.map((f) => `\n  ${f.path} (sha256 ${f.sha256})`).join('')
      process.stdout.write(`${signed.sigFile}: ${file} (sha256 ${signed.signature.config_sha256}) signed by key ${key.id} (${key.algorithm})${covered === '' ? '' : `, with the trust files it names:${covered}`}\n`)
      return 0
    }
    case 'verify-log': {
      const { values, positionals } = parseArgs({
        args: rest,
        strict: true,
        allowPositionals: true,
        options: {
          'public-key': { type: 'string', multiple: true },
          checkpoints: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      })
      if (positionals.length === 0 || values['public-key'] === undefined) throw new UsageError('verify-log needs FILE... and --public-key FILE')
      const [{ readPublicKey }, { formatVerify, readCheckpoints, verifyLog }] = await Promise.all([import('./config/signing-keys.js'), import('./evidence/verify-log.js')])
      const publicKeys = values['public-key'].map((f) => {
        const key = readPublicKey(`file:${f}`)
        if ('problem' in key) throw new UsageError(`--public-key ${f}: ${key.problem}`)
        return key
      })
      let report: VerifyReport
      try {
        const checkpoints = values.checkpoints === undefined ? undefined : await readCheckpoints(values.checkpoints)
        report = await verifyLog(positionals, { publicKeys, ...(checkpoints === undefined ? {} : { checkpoints }) })
      } catch (err) {
        if (typeof (err as NodeJS.ErrnoException).code === 'string') throw new UsageError((err as Error).message)
        throw err
      }
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatVerify(report))
      return report.ok ? 0 : 1
    }
    case 'groups': {
      const { values } = parseArgs({ args: rest, strict: true, options: { json: { type: 'boolean', default: false } } })
      const { BUILTIN_GROUPS } = await import('./policy/builtin-groups.js')
      const groups = [...BUILTIN_GROUPS.values()]
      if (values.json) {
        process.stdout.write(`${JSON.stringify(groups.map((g) => ({ ...g, members: [...g.members].sort() })))}\n`)
      } else {
        for (const g of groups) {
          process.stdout.write(`group:${g.name} (${g.members.size})\n  source: ${g.source}\n  date:   ${g.date}\n${g.note === undefined ? '' : `  note:   ${g.note}\n`}  ${[...g.members].sort().join(' ')}\n\n`)
        }
      }
      return 0
    }
    case '--version':
    case '-v': {
      // package.json sits one level above both src/cli.ts and dist/cli.js, and in the image.
      const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
      process.stdout.write(`${pkg.version}\n`)
      return 0
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP)
      return command === undefined ? 2 : 0
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

// A reader that goes away (`geofence groups | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0) })

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err: unknown) => {
  if (err instanceof ConfigError) {
    const outcome = process.argv[2] === 'test' ? 'no test was run' : 'nothing was started'
    process.stderr.write(`${err.message}\n${err.problems.length} problem(s) in ${err.file}; ${outcome}.\n`)
    process.exitCode = 2
  } else if ((err as Error).name === 'ListenError') { // server.ts's ListenError (loaded with serve)
    process.stderr.write(`geofence: ${(err as Error).message}; nothing was started.\n`)
    process.exitCode = 2
  } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`geofence: ${(err as Error).message}\nRun "geofence --help" for usage.\n`)
    process.exitCode = 2
  } else {
    process.stderr.write(`geofence: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  }
})

/** --identity '{"ctry":"HK","legal_entity":"bank-hk"}': claims as a token would carry them. */
function claimsArgument (text: string): Record<string, unknown> {
  let claims: unknown
  try {
    claims = JSON.parse(text)
  } catch {
    throw new UsageError('--identity takes the token\'s claims as a JSON object, e.g. \'{"ctry":"HK"}\'')
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new UsageError('--identity takes a JSON object of claims')
  return claims as Record<string, unknown>
}

/** With server.workers, the primary checks that an approved policy can be had (from the server or cache_dir) before it forks. */
async function firstPolicy (file: string, bootstrap: BootstrapConfig): Promise<void> {
  const [{ PolicySource }, { loadConfig }] = await Promise.all([import('./policy-source.js'), import('./config/load.js')])
  const source = new PolicySource(bootstrap.policySource, bootstrap.policySignature?.keys ?? [], file)
  try {
    await source.start(async (fetched) => loadConfig(file, process.env, { fetched }))
  } finally {
    source.close()
  }
}

/** A cluster worker requires the signatures the primary read policy_signature for at start. */
async function workerPolicyKeys (): Promise<{ policyKeys?: readonly SigningKey[] | null }> {
  if (!cluster.isWorker) return {}
  const [{ POLICY_KEYS_ENV }, { readPublicKey }] = await Promise.all([import('./cluster.js'), import('./config/signing-keys.js')])
  const given = process.env[POLICY_KEYS_ENV]
  if (given === undefined) return {}
  const pems = JSON.parse(given) as string[] | null
  if (pems === null) return { policyKeys: null }
  return {
    policyKeys: pems.map((pem) => {
      const key = readPublicKey(pem)
      if ('problem' in key) throw new Error(`the primary's policy_signature key: ${key.problem}`)
      return key
    }),
  }
}
