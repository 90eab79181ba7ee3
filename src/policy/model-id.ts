// Canonical model ids: the one name a policy glob is matched against, whichever provider's
// spelling a request used. Claude Sonnet 4 is `claude-sonnet-4-20250514` at Anthropic,
// `claude-sonnet-4@20250514` on Vertex, `anthropic.claude-sonnet-4-20250514-v1:0` on Bedrock
// (and `us.anthropic...`, or an ARN around either); all of them are canonically
// `claude-sonnet-4-20250514`, so that `claude-*` refuses Claude on every route to it.
// The input is already percent-decoded (proxy/upstream-path.ts decodes the path once).

/** The longest model id the gateway takes. */
export const MAX_MODEL_LENGTH = 256
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/**
 * What makes a string not a model id, or null when it is one. Model ids are short printable
 * names; anything else is not one (and would carry arbitrary client text into the decision
 * log). The one rule for requests and for `model_aliases` alike.
 */
export function modelIdProblem (model: string): string | null {
  if (model === '') return 'an empty string'
  if (model.length > MAX_MODEL_LENGTH || CONTROL.test(model)) return `over ${MAX_MODEL_LENGTH} characters, or control characters`
  return null
}

/** Bedrock model providers: the `vendor.` of `vendor.model-v1:0`. */
const BEDROCK_VENDORS = ['anthropic', 'amazon', 'meta', 'mistral', 'cohere', 'ai21', 'deepseek', 'writer', 'openai',
  'qwen', 'twelvelabs', 'stability', 'luma', 'google', 'minimax', 'moonshot', 'moonshotai', 'nvidia']
/** Cross-region inference profile prefixes (`us.anthropic...`). */
const GEO_PREFIXES = ['us', 'us-gov', 'eu', 'apac', 'global', 'jp', 'au', 'ca']
/** Vertex publishers and the `publisher/model` form of Vertex's OpenAI-compatible endpoint. */
const PUBLISHERS = ['google', 'anthropic', 'meta', 'mistralai', 'mistral-ai', 'openai', 'deepseek-ai', 'qwen', 'ai21']
const VENDOR_SET = new Set(BEDROCK_VENDORS)
const GEO_SET = new Set(GEO_PREFIXES)

/** A Bedrock ARN that names its model: a foundation model or a cross-region inference profile. */
export const MODEL_ARN = /^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)\/(.+)$/i
/** The resource type of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:TYPE/ID`). */
const ARN_RESOURCE = /^arn:[^:]*:([^:]*):[^:]*:[^:]*:([^/:]*)/
const RESOURCE = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/[^/]+\/models\/(.+)$/
const PUBLISHER = new RegExp(`^(?:${PUBLISHERS.join('|')})/(.+)$`)
/** Vertex's `publisher/model`, whoever the publisher (its Model Garden grows). */
const ANY_PUBLISHER = /^[a-z0-9][a-z0-9_.-]*\/([^/]+)$/
const BEDROCK = new RegExp(`^(?:(?:${GEO_PREFIXES.join('|')})\\.)?(?:${BEDROCK_VENDORS.join('|')})\\.(.+)$`)
/** Bedrock's version suffix: `-v1:0`, `-v2:0`, `-v1`, and context-window variants (`-v1:0:200k`). */
const BEDROCK_VERSION = /-v\d+(?::\d+)?(?::\d+k)?$|:\d+$/
/** Vertex's version: `@20250514` becomes `-20250514`; `@latest`, `@001` and such are dropped. */
const VERTEX_VERSION = /@([^@]*)$/
/**
 * An OpenAI fine-tuned model: `ft:BASE:ORG:SUFFIX:ID` (the suffix may be empty), or one of its
 * checkpoints (`...:ckpt-step-100`). It is matched as its base model.
 */
const FINE_TUNED = /^ft:([a-z0-9][a-z0-9._-]*):[^:]+:[^:]*:[a-z0-9_-]+(?::ckpt-step-\d+)?$/
/**
 * An Azure OpenAI fine-tuned model: `BASE.ft-ID`, the id 32 hex digits
 * (`gpt-4o-mini-2024-07-18.ft-0e208cf33a6a466994aff31a08aba678`). It is matched as its base model.
 */
const AZURE_FINE_TUNED = /^([a-z0-9][a-z0-9._-]*?)\.ft-([^.]*)$/

/**
 * How a provider API spells its model ids: which syntax around a name is a wrapper there. An id
 * that still holds wrapper syntax once every known wrapper is stripped is not understood, and
 * is decided as a model the gateway cannot see (policy.unknown_model), never as written.
 */
export interface IdSyntax {
  /** The API, for reasons and the memo. */
  api: string
  /** Every id is `vendor.model`, behind an optional inference-profile prefix (Bedrock): an unknown vendor is not understood. */
  vendorDots?: true
  /** Any `publisher/model` is the publisher wrapper (Vertex's OpenAI-compatible endpoint). */
  anyPublisher?: true
  /** "/", ":" and "@" belong to plain names (Hugging Face `org/name`, Ollama `name:tag`): only the known wrappers are wrappers. */
  plainNames?: true
}

/** The canonical id, or which wrapper was not understood. */
export type ModelIdRead = { canonical: string } | { notUnderstood: string }

/** Ids as `model_aliases` targets and `geofence explain` take them: every known wrapper stripped, the rest kept. */
const ANY: IdSyntax = { api: 'any', plainNames: true }

/** Requests name few distinct models: their readings are kept (bounded; pure, so never stale). */
const memo = new Map<string, ModelIdRead>()
const MEMO_SIZE = 4096

/** The canonical id of a model as a request to `syntax`'s API names it, or why it is not understood. */
export function readModelId (model: string, syntax: IdSyntax): ModelIdRead {
  const key = `${syntax.api}\u0000${model}`
  const known = memo.get(key)
  if (known !== undefined) return known
  if (memo.size >= MEMO_SIZE) memo.clear()
  const read = readOf(model, syntax)
  memo.set(key, read)
  return read
}

/** The canonical id whatever the API: the wrappers the gateway knows stripped, anything else kept as written. */
export function canonicalModelId (model: string): string {
  const read = readModelId(model, ANY)
  return 'canonical' in read ? read.canonical : model.trim().toLowerCase()
}

function readOf (model: string, syntax: IdSyntax): ModelIdRead {
  let id = model.trim().toLowerCase()
  if (id.startsWith('arn:')) {
    const inner = MODEL_ARN.exec(id)?.[1]
    if (inner === undefined) {
      const [, service = '', type = ''] = ARN_RESOURCE.exec(id) ?? []
      return { notUnderstood: `an ARN of ${service === '' ? 'an unknown service' : service} ${type === '' ? 'resource' : `resource type "${type}"`} does not say which model it is` }
    }
    id = inner
  }
  if (id.startsWith('ft:')) {
    const base = FINE_TUNED.exec(id)?.[1]
    if (base === undefined) return { notUnderstood: 'a fine-tuned model id ("ft:...") that is not ft:BASE:ORG:SUFFIX:ID' }
    id = base
  }
  const azureTuned = id.includes('.ft-') ? AZURE_FINE_TUNED.exec(id) : null
  if (id.includes('.ft-')) {
    if (azureTuned === null || !/^[0-9a-f]{32}$/.test(azureTuned[2] ?? '')) return { notUnderstood: 'a fine-tuned model id ("....ft-...") that is not Azure\'s BASE.ft-ID (32 hex digits)' }
    id = azureTuned[1] ?? id
  }
  id = RESOURCE.exec(id)?.[1] ?? id
  if (id.startsWith('models/')) id = id.slice('models/'.length)
  if (syntax.plainNames !== true && id.startsWith('tunedmodels/')) {
    return { notUnderstood: 'a tuned Gemini model (tunedModels/...) does not say which model it was tuned from' }
  }
  id = (syntax.anyPublisher === true ? ANY_PUBLISHER : PUBLISHER).exec(id)?.[1] ?? id
  const bedrock = BEDROCK.exec(id)
  if (bedrock !== null) {
    id = (bedrock[1] ?? id).replace(BEDROCK_VERSION, '')
  } else {
    const prefix = unknownPrefix(id, syntax.vendorDots === true)
    if (prefix !== null) return { notUnderstood: prefix }
  }
  id = id.replace(VERTEX_VERSION, (_m, version: string) => (/^\d{8}$/.test(version) ? `-${version}` : ''))
  if (syntax.plainNames !== true) {
    const wrapper = (syntax.vendorDots === true ? /[/@]/ : /[/:@]/).exec(id)?.[0]
    if (wrapper !== undefined) return { notUnderstood: `"${wrapper}" in a model id is a wrapper the gateway does not know for the ${syntax.api} API` }
  }
  return { canonical: id }
}

/**
 * A Bedrock-shaped id the gateway cannot strip: `xx.vendor.model` with an unknown
 * inference-profile prefix (on every API: that shape is Bedrock's), and, where every id is
 * `vendor.model` (Bedrock), an unknown vendor or an id of another shape. Null when there is none.
 */
function unknownPrefix (id: string, vendorDots: boolean): string | null {
  const labels = id.split('.')
  const [first = '', second = ''] = labels
  if (/[/@]/.test(id)) return null
  if (labels.length >= 3 && VENDOR_SET.has(second) && !GEO_SET.has(first)) {
    return `the inference-profile prefix "${first}." is not one the gateway knows (${GEO_PREFIXES.map((g) => `${g}.`).join(', ')})`
  }
  if (!vendorDots) return null
  // Where every id is `vendor.model` (or an ARN), anything else is a vendor the gateway does not
  // know, or no Bedrock id at all: neither says which model runs.
  const [vendor = '', name = ''] = GEO_SET.has(first) && labels.length >= 3 ? [second, labels[2]] : [first, second]
  if (labels.length < 2 || !/^[a-z][a-z0-9-]*$/.test(vendor) || !/^[a-z]/.test(name)) return `"${id}" is not a Bedrock model id (vendor.model, a cross-region profile of one, or an ARN)`
  return `the model vendor "${vendor}." is not one the gateway knows (${BEDROCK_VENDORS.map((v) => `${v}.`).join(', ')})`
}
