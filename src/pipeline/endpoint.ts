// Stage endpoint: where the request goes below its upstream, and where that endpoint names
// its model. Known from the request target alone, before any body is read, so that a path
// that cannot be read, or a body larger than its endpoint takes, costs nothing more.
import type { Config, UpstreamConfig } from '../config/validate.js'
import { DIALECTS, type Dialect, type ModelSource } from '../dialects/registry.js'
import { GatewayError } from '../errors.js'
import { mountName, upstreamPath, type UpstreamPath } from '../proxy/upstream-path.js'

export interface RequestEndpoint {
  upstream: UpstreamConfig
  dialect: Dialect
  /** The path below the mount, decoded once. */
  path: UpstreamPath
  /** Where the endpoint names its model. */
  modelSource: ModelSource
  /** server.batch_body_limit for a batch endpoint, else server.body_limit; and which of the two it is. */
  bodyLimit: number
  limitSetting: 'server.body_limit' | 'server.batch_body_limit'
}

/** The upstream mounted at the request target's first segment, or undefined. */
export function mountedUpstream (config: Config, url: string): UpstreamConfig | undefined {
  return config.upstreams.get(mountName(url))
}

/** The 404 of a request target where no upstream is mounted (the query left out: it may hold a key). */
export function notMounted (url: string): GatewayError {
  return new GatewayError('not_found', `no upstream is mounted at ${url.split('?')[0] ?? ''}`)
}

export function findEndpoint (config: Config, upstream: UpstreamConfig, method: string, url: string): RequestEndpoint {
  const dialect = DIALECTS[upstream.dialect]
  const path = upstreamPath(url, `/${upstream.name}`)
  const model = dialect.endpoint(method, path)
  // An encoded slash is only ever part of one id (a Bedrock model or invocation ARN); anywhere
  // else it could make the upstream read another endpoint than the one that was checked.
  const idSegment = model.kind === 'path' ? model.segment : model.kind === 'none' ? model.idSegment : undefined
  if (path.encodedSlashes.some((i) => i !== idSegment)) {
    throw new GatewayError('invalid_request', 'the request path is refused: it contains an encoded slash (%2F) outside a model id or ARN')
  }
  // A model named in the query where the endpoint reads it elsewhere: some servers prefer it.
  if (model.kind !== 'query' && model.kind !== 'none' && model.kind !== 'unknown' && path.params.some((p) => p.name.toLowerCase() === 'model')) {
    throw new GatewayError('invalid_request', 'the request query names a model, but this endpoint names its model elsewhere; a request names one model')
  }
  const batch = model.kind === 'batch'
  return { upstream, dialect, path, modelSource: model, bodyLimit: batch ? config.server.batchBodyLimit : config.server.bodyLimit, limitSetting: batch ? 'server.batch_body_limit' : 'server.body_limit' }
}
