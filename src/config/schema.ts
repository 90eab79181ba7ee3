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
    action: {
      anyOf: [
        { enum: ['block'] },
        {
          type: 'object',
          additionalProperties: false,
          required: ['route'],
          properties: {
            route: {
              type: 'object',
              additionalProperties: false,
              required: ['upstream', 'model'],
              properties: { upstream: { type: 'string' }, model: { type: 'string', minLength: 1 } },
            },
          },
        },
      ],
    },
    mode: { enum: ['enforce', 'dry-run'] },
    anonymous: { enum: ['block', 'allow', 'unknown'] },
  },
} as const

const network = {
  type: 'object',
  additionalProperties: false,
  required: ['cidr', 'country', 'name'],
  properties: {
    cidr: { type: 'string' },
    country: { type: 'string' },
    subdivision: { type: 'string' },
    name: { type: 'string', minLength: 1 },
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
        anonymous_ip: { type: 'string', minLength: 1 },
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
    networks: { type: 'array', items: network },
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
        anonymous: { enum: ['block', 'allow', 'unknown'] },
        location: { enum: ['country', 'registered_country', 'strictest'] },
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
  action: 'block' | { route: { upstream: string, model: string } }
  mode?: 'enforce' | 'dry-run'
  anonymous?: AnonymousPolicy
}

export type AnonymousPolicy = 'block' | 'allow' | 'unknown'
export type LocationBasis = 'country' | 'registered_country' | 'strictest'

export interface RawNetwork {
  cidr: string
  country: string
  subdivision?: string
  name: string
}

export interface RawConfig {
  server?: { host?: string, port?: number, body_limit?: string | number }
  client_ip?: { trusted_proxies?: string[], headers?: Array<'x-forwarded-for' | 'forwarded'> }
  geoip?: { databases?: string[], anonymous_ip?: string, cache?: { max_entries?: number, ttl?: string | number } }
  networks?: RawNetwork[]
  groups?: Record<string, string[]>
  upstreams: Record<string, { url: string, dialect: DialectName }>
  policy: {
    mode?: 'enforce' | 'dry-run'
    default?: 'block' | 'allow'
    unknown_location?: 'block' | 'allow'
    anonymous?: AnonymousPolicy
    location?: LocationBasis
    rules: RawRule[]
  }
  logging?: { level?: string }
}
