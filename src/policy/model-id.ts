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

/** A Bedrock ARN that names its model: a foundation model or a cross-region inference profile. */
export const MODEL_ARN = /^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)\/(.+)$/i
const RESOURCE = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/[^/]+\/models\/(.+)$/
const PUBLISHER = new RegExp(`^(?:${PUBLISHERS.join('|')})/(.+)$`)
const BEDROCK = new RegExp(`^(?:(?:${GEO_PREFIXES.join('|')})\\.)?(?:${BEDROCK_VENDORS.join('|')})\\.(.+)$`)
/** Bedrock's version suffix: `-v1:0`, `-v2:0`, `-v1`, and context-window variants (`-v1:0:200k`). */
const BEDROCK_VERSION = /-v\d+(?::\d+)?(?::\d+k)?$|:\d+$/
/** Vertex's version: `@20250514` becomes `-20250514`; `@latest`, `@001` and such are dropped. */
const VERTEX_VERSION = /@([^@]*)$/

/** Requests name few distinct models: their canonical ids are kept (bounded; pure, so never stale). */
const memo = new Map<string, string>()
const MEMO_SIZE = 4096

export function canonicalModelId (model: string): string {
  const known = memo.get(model)
  if (known !== undefined) return known
  if (memo.size >= MEMO_SIZE) memo.clear()
  const id = canonicalOf(model)
  memo.set(model, id)
  return id
}

function canonicalOf (model: string): string {
  let id = model.trim().toLowerCase()
  id = MODEL_ARN.exec(id)?.[1] ?? id
  id = RESOURCE.exec(id)?.[1] ?? id
  if (id.startsWith('models/')) id = id.slice('models/'.length)
  id = PUBLISHER.exec(id)?.[1] ?? id
  const bedrock = BEDROCK.exec(id)
  if (bedrock !== null) id = (bedrock[1] ?? id).replace(BEDROCK_VERSION, '')
  id = id.replace(VERTEX_VERSION, (_m, version: string) => (/^\d{8}$/.test(version) ? `-${version}` : ''))
  return id
}
