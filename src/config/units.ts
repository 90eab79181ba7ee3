// Sizes and durations as people write them in YAML: `32mb`, `1h`, `250ms`.
// Sizes are binary (1kb = 1024 bytes), as in Fastify's bodyLimit and the `bytes` package.

const SIZE = /^(\d+)\s*(b|kb|mb|gb)?$/i
const DURATION = /^(\d+)\s*(ms|s|m|h|d)$/

const SIZE_FACTOR: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }
const DURATION_FACTOR: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export const SIZE_PATTERN = SIZE.source
export const DURATION_PATTERN = DURATION.source

/** Bytes for `32mb`, `1024`, `512kb`; null when the text is not a size. */
export function parseSize (value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null
  const m = SIZE.exec(value.trim())
  if (m === null) return null
  return Number(m[1]) * (SIZE_FACTOR[(m[2] ?? 'b').toLowerCase()] ?? 1)
}

/** Milliseconds for `1h`, `30s`, `250ms`; a bare number is seconds. Null when not a duration. */
export function parseDuration (value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : null
  const m = DURATION.exec(value.trim())
  if (m === null) return null
  return Number(m[1]) * (DURATION_FACTOR[m[2] ?? 's'] ?? 1000)
}
