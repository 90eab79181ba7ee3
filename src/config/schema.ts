// The shape of the config file (JSON Schema, checked by ajv). Meaning (country codes, groups,
// CIDRs, sizes, cross references) is checked afterwards in config/validate.ts, where the
// messages can say what was meant.

import { DIALECT_NAMES, type DialectName } from '../dialects/types.js'
import { BOOTSTRAP_KEYS, POLICY_SOURCE_SCHEMA, type RawPolicySource } from './policy-source.js'
import type { AnonymousPolicy, JurisdictionSource, LocationBasis } from '../policy/rules.js'

const stringList = { type: 'array', items: { type: 'string' } } as const
const sizeOrDuration = { type: ['string', 'integer'] } as const
/** Which locations a rule judges: the caller's network address, the identity token, or both. */
const jurisdiction = { type: 'array', items: { enum: ['network', 'identity'] }, minItems: 1, uniqueItems: true } as const


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
    clients: stringList,
    jurisdiction,
  },
} as const

/** One identity provider whose tokens the gateway believes (config/identity.ts checks the meaning). */
const issuer = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'audiences', 'claims'],
  properties: {
    issuer: { type: 'string', minLength: 1 },
    discovery: { type: 'boolean' },
    jwks_uri: { type: 'string' },
    jwks_file: { type: 'string' },
    audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
    algorithms: stringList,
    claims: {
      type: 'object',
      additionalProperties: false,
      required: ['country'],
      properties: { country: { type: 'string' }, subdivision: { type: 'string' }, entity: { type: 'string' }, subject: { type: 'string' } },
    },
    values: { type: 'object', additionalProperties: { type: 'string' } },
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
        batch_body_limit: sizeOrDuration,
        body_timeout: sizeOrDuration,
        shutdown_grace: sizeOrDuration,
        max_event_loop_delay: sizeOrDuration,
        workers: { anyOf: [{ type: 'integer', minimum: 1, maximum: 64 }, { const: 'auto' }] },
        max_expansion_ratio: { type: 'number', minimum: 1 },
        batch_max_items: { type: 'integer', minimum: 1 },
        max_concurrent_large_bodies: { type: 'integer', minimum: 1, maximum: 1024 },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: {
            cert: { type: 'string' },
            key: { type: 'string' },
            client_ca: { type: 'string' },
            client_certificate: { enum: ['none', 'request', 'require'] },
          },
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
      },
    },
    clients: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          token_sha256: { type: 'string' },
          certificate: {
            type: 'object',
            additionalProperties: false,
            properties: { subject: { type: 'string', minLength: 1 }, san_uri: { type: 'string', minLength: 1 } },
          },
        },
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
          dialect: { enum: DIALECT_NAMES },
          headers: { type: 'object', additionalProperties: { type: 'string' } },
          strip_client_credentials: { type: 'boolean' },
          model_aliases: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
          aws_sigv4: {
            type: 'object',
            additionalProperties: false,
            required: ['region', 'access_key_id', 'secret_access_key'],
            properties: {
              region: { type: 'string', minLength: 1 },
              service: { type: 'string', minLength: 1 },
              access_key_id: { type: 'string' },
              secret_access_key: { type: 'string' },
              session_token: { type: 'string' },
            },
          },
          endpoints: stringList,
          timeouts: {
            type: 'object',
            additionalProperties: false,
            properties: { connect: sizeOrDuration, first_byte: sizeOrDuration, idle: sizeOrDuration },
          },
          proxy: { enum: ['none'] },
          tls: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ca: { type: 'string' },
              cert: { type: 'string' },
              key: { type: 'string' },
              servername: { type: 'string', minLength: 1 },
              min_version: { enum: ['TLSv1.2', 'TLSv1.3'] },
            },
          },
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
        unknown_model: { enum: ['block', 'allow'] },
        unknown_endpoint: { enum: ['block', 'allow'] },
        anonymous: { enum: ['block', 'allow', 'unknown'] },
        location: { enum: ['country', 'registered_country', 'strictest'] },
        jurisdiction,
        rules: { type: 'array', items: rule },
      },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
        client_ip: { enum: ['full', 'truncated', 'hashed'] },
        client_ip_key: { type: 'string' },
        integrity: {
          type: 'object',
          additionalProperties: false,
          required: ['key'],
          properties: {
            key: { type: 'string', minLength: 1 },
            checkpoint_every: { type: 'integer', minimum: 1 },
            checkpoint_interval: sizeOrDuration,
            checkpoint_file: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    identity: {
      type: 'object',
      additionalProperties: false,
      required: ['issuers'],
      properties: {
        header: { type: 'string', minLength: 1 },
        required: { type: 'boolean' },
        clock_skew: sizeOrDuration,
        max_stale: sizeOrDuration,
        refresh: sizeOrDuration,
        refetch_cooldown: sizeOrDuration,
        issuers: { type: 'array', items: issuer, minItems: 1 },
      },
    },
    policy_signature: {
      type: 'object',
      additionalProperties: false,
      required: ['public_keys'],
      properties: { public_keys: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 } },
    },
    egress: {
      type: 'object',
      additionalProperties: false,
      properties: {
        proxy: { type: 'string', minLength: 1 },
        no_proxy: stringList,
        proxy_auth: { type: 'string', minLength: 1 },
      },
    },
  },
} as const

export interface RawIntegrity {
  key: string
  checkpoint_every?: number
  checkpoint_interval?: string | number
  checkpoint_file?: string
}

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
  clients?: string[]
  jurisdiction?: JurisdictionSource[]
}

export interface RawIssuer {
  issuer: string
  discovery?: boolean
  jwks_uri?: string
  jwks_file?: string
  audiences: string[]
  algorithms?: string[]
  claims: { country: string, subdivision?: string, entity?: string, subject?: string }
  values?: Record<string, string>
}

export interface RawIdentity {
  header?: string
  required?: boolean
  clock_skew?: string | number
  max_stale?: string | number
  refresh?: string | number
  refetch_cooldown?: string | number
  issuers: RawIssuer[]
}

export interface RawServerTls {
  cert: string
  key: string
  client_ca?: string
  client_certificate?: 'none' | 'request' | 'require'
}

export interface RawTls {
  ca?: string
  cert?: string
  key?: string
  servername?: string
  min_version?: 'TLSv1.2' | 'TLSv1.3'
}

export interface RawNetwork {
  cidr: string
  country: string
  subdivision?: string
  name: string
}

export interface RawConfig {
  server?: { host?: string, port?: number, body_limit?: string | number, batch_body_limit?: string | number, body_timeout?: string | number, shutdown_grace?: string | number, max_event_loop_delay?: string | number, workers?: number | 'auto', max_expansion_ratio?: number, batch_max_items?: number, max_concurrent_large_bodies?: number, tls?: RawServerTls }
  admin?: { host?: string, port?: number }
  clients?: Record<string, { token_sha256?: string, certificate?: { subject?: string, san_uri?: string } }>
  client_ip?: { trusted_proxies?: string[], headers?: Array<'x-forwarded-for' | 'forwarded'> }
  geoip?: { databases?: string[], anonymous_ip?: string, cache?: { max_entries?: number, ttl?: string | number } }
  networks?: RawNetwork[]
  groups?: Record<string, string[]>
  upstreams: Record<string, {
    url: string
    dialect: DialectName
    headers?: Record<string, string>
    strip_client_credentials?: boolean
    model_aliases?: Record<string, string>
    aws_sigv4?: { region: string, service?: string, access_key_id: string, secret_access_key: string, session_token?: string }
    endpoints?: string[]
    timeouts?: { connect?: string | number, first_byte?: string | number, idle?: string | number }
    proxy?: 'none'
    tls?: RawTls
  }>
  egress?: { proxy?: string, no_proxy?: string[], proxy_auth?: string }
  policy: {
    mode?: 'enforce' | 'dry-run'
    default?: 'block' | 'allow'
    unknown_location?: 'block' | 'allow'
    unknown_model?: 'block' | 'allow'
    unknown_endpoint?: 'block' | 'allow'
    anonymous?: AnonymousPolicy
    location?: LocationBasis
    jurisdiction?: JurisdictionSource[]
    rules: RawRule[]
  }
  logging?: { level?: string, client_ip?: 'full' | 'truncated' | 'hashed', client_ip_key?: string, integrity?: RawIntegrity }
  identity?: RawIdentity
  policy_signature?: { public_keys: string[] }
}

/** A bootstrap file (policy_source): the gateway's own sections; the rest is fetched (config/policy-source.ts). */
export const BOOTSTRAP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['policy_source'],
  properties: {
    ...Object.fromEntries(BOOTSTRAP_KEYS.filter((k) => k !== 'policy_source').map((k) => [k, CONFIG_SCHEMA.properties[k]])),
    policy_source: POLICY_SOURCE_SCHEMA,
  },
} as const

export type RawBootstrap = Pick<RawConfig, 'server' | 'admin' | 'client_ip' | 'logging' | 'policy_signature'> & { policy_source: RawPolicySource }
