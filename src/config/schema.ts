// The shape of the config file (JSON Schema, checked by ajv). Meaning (country codes, groups,
// CIDRs, sizes, cross references) is checked afterwards in config/validate.ts, where the
// messages can say what was meant.

const stringList = { type: 'array', items: { type: 'string' } } as const
const sizeOrDuration = { type: ['string', 'integer'] } as const

export const DIALECTS = ['anthropic', 'openai'] as const
export type DialectName = typeof DIALECTS[number]

const rule = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'action'],
  properties: {
    name: { type: 'string', minLength: 1 },
    upstreams: stringList,
    models: stringList,
    allow: stringList,
    deny: stringList,
    action: { enum: ['block'] },
    mode: { enum: ['enforce', 'dry-run'] },
  },
} as const

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['upstreams', 'policy'],
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        body_limit: sizeOrDuration,
      },
    },
    client_ip: {
      type: 'object',
      additionalProperties: false,
      properties: {
        trusted_proxies: stringList,
        headers: { type: 'array', items: { enum: ['x-forwarded-for', 'forwarded'] }, uniqueItems: true },
      },
    },
    geoip: {
      type: 'object',
      additionalProperties: false,
      properties: {
        databases: stringList,
        cache: {
          type: 'object',
          additionalProperties: false,
          properties: {
            max_entries: { type: 'integer', minimum: 0 },
            ttl: sizeOrDuration,
          },
        },
      },
    },
    groups: { type: 'object', additionalProperties: stringList },
    upstreams: {
      type: 'object',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'dialect'],
        properties: {
          url: { type: 'string' },
          dialect: { enum: DIALECTS },
        },
      },
    },
    policy: {
      type: 'object',
      additionalProperties: false,
      required: ['rules'],
      properties: {
        mode: { enum: ['enforce', 'dry-run'] },
        default: { enum: ['block', 'allow'] },
        unknown_location: { enum: ['block', 'allow'] },
        rules: { type: 'array', items: rule },
      },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
      },
    },
  },
} as const

/** The file as written, after the schema has passed (keys as in YAML). */
export interface RawRule {
  name: string
  upstreams?: string[]
  models?: string[]
  allow?: string[]
  deny?: string[]
  action: 'block'
  mode?: 'enforce' | 'dry-run'
}

export interface RawConfig {
  server?: { host?: string, port?: number, body_limit?: string | number }
  client_ip?: { trusted_proxies?: string[], headers?: Array<'x-forwarded-for' | 'forwarded'> }
  geoip?: { databases?: string[], cache?: { max_entries?: number, ttl?: string | number } }
  groups?: Record<string, string[]>
  upstreams: Record<string, { url: string, dialect: DialectName }>
  policy: {
    mode?: 'enforce' | 'dry-run'
    default?: 'block' | 'allow'
    unknown_location?: 'block' | 'allow'
    rules: RawRule[]
  }
  logging?: { level?: string }
}
