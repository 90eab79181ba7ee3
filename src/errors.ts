// Every error the gateway answers with, in one place: a code, an HTTP status, and the
// error "kind" each dialect renders in its own shape (see dialects/*.ts `renderError`).

export type ErrorKind =
  | 'blocked'          // 451: the policy refused the request
  | 'invalid_request'  // 400: the gateway cannot read the request well enough to decide
  | 'unauthorized'     // 401: client authentication is on and the token is missing or unknown
  | 'not_found'        // 404: no upstream is mounted at this path
  | 'too_large'        // 413: the body is over server.body_limit
  | 'headers_too_large' // 431: the request head is over what the server reads (it would be cut, never read in part)
  | 'request_timeout'  // 408: the request (head or body) did not arrive in time
  | 'unsupported_media' // 415: a Content-Encoding the gateway does not decode
  | 'bad_gateway'      // 502: the upstream could not be reached or answered badly
  | 'gateway_timeout'  // 504: the upstream did not answer in time
  | 'overloaded'       // 503: the gateway's event loop is saturated, or it is shutting down
  | 'identity_unavailable' // 503: identity tokens cannot be checked: no usable keys from the identity provider
  | 'internal'         // 500: a bug in the gateway

export const STATUS: Readonly<Record<ErrorKind, number>> = {
  blocked: 451,
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  too_large: 413,
  headers_too_large: 431,
  request_timeout: 408,
  unsupported_media: 415,
  bad_gateway: 502,
  gateway_timeout: 504,
  overloaded: 503,
  identity_unavailable: 503,
  internal: 500,
}

/** An error the gateway answers with. `message` is shown to the caller: it must hold no secret. */
export class GatewayError extends Error {
  readonly kind: ErrorKind
  readonly status: number
  constructor (kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GatewayError'
    this.kind = kind
    this.status = STATUS[kind]
  }
}

/** One problem found in a config file, with where it is. */
export interface ConfigProblem {
  path: Array<string | number>
  message: string
  line?: number
  col?: number
}

/** A config that cannot be used; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly file: string
  readonly problems: ConfigProblem[]
  constructor (file: string, problems: ConfigProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'))
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }
}

export function formatKeyPath (path: ReadonlyArray<string | number>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? part : `.${part}`
  }
  return out === '' ? '(top level)' : out
}

export function formatProblem (file: string, p: ConfigProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.col ?? 1}`
  return p.path.length === 0 ? `${where}: ${p.message}` : `${where}: ${formatKeyPath(p.path)}: ${p.message}`
}
