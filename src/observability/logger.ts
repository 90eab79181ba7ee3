// The process logger: pino JSON on stdout. Decision lines are built from an allow-list of
// fields (pipeline/record.ts), so no header or body can reach a log by accident;
// the redaction paths below are the second line of defence, fixed at start-up.
import cluster from 'node:cluster'
import pino, { type DestinationStream, type Logger } from 'pino'
import { SECRET_HEADERS } from '../proxy/credentials.js'

// Exact paths only: a wildcard makes pino walk every line's top-level keys, on every line.
const REDACT = SECRET_HEADERS.flatMap((h) => [
  `headers["${h}"]`, `req.headers["${h}"]`, `request.headers["${h}"]`, `err.headers["${h}"]`, `err.cause.headers["${h}"]`,
])

/**
 * Standard output, asynchronously (off the request's critical path; pino flushes on exit).
 * Cluster workers share stdout: there each line is its own write, so lines never interleave.
 */
export function processDestination (): DestinationStream {
  return pino.destination({ dest: 1, sync: cluster.isWorker })
}

/** `destination` may chain the lines (evidence/log-chain.ts, logging.integrity). */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  }
  return pino(options, destination ?? processDestination())
}
