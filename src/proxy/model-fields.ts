// The body fields through which a request makes its upstream run a model, besides the one the
// endpoint is known by (the body's `model`, a path segment). A request passes only if every
// model it names passes, so each of these is read and decided like the request's own model.
// Found in the official SDKs' request types (openai, @anthropic-ai/sdk, @google/genai) for the
// endpoints the gateway reads, and in the OpenAI-compatible servers that honour more (LiteLLM,
// OpenRouter). README.md ("Model fields") lists them per dialect; keep the two together.
import type { RouteFamily } from '../dialects/types.js'

export interface ModelField {
  /** Where, from the object that names the request's model: keys, and `[]` for each element of a list. */
  path: string
  /**
   * The field names the request's own model again (Google's batches and token counts): it must
   * agree with it, and adds no model of its own.
   */
  agrees?: true
  /** An element of the list may also be an object naming its model as `model` (LiteLLM's `fallbacks`). */
  orObject?: true
  /** A string in place of the list that has the server choose the models: why they cannot be seen. */
  serverChooses?: Readonly<Record<string, string>>
  /** An element of this `type` that names no model runs this one (a documented default). */
  defaultFor?: { type: string, model: string }
}

/** `fallbacks`: Anthropic's `[{"model":...}]` or `"default"`, LiteLLM's `["model", ...]` or `[{"model":...}]`. */
const FALLBACKS: ModelField = {
  path: 'fallbacks[]',
  orObject: true,
  serverChooses: { default: 'the server chooses the fallback models ("fallbacks": "default")' },
}

/** Anthropic Messages (and Claude on Vertex AI and Bedrock). */
export const ANTHROPIC_FIELDS: readonly ModelField[] = [
  FALLBACKS,
  // The advisor tool (advisor_20260301) runs a model of its own.
  { path: 'tools[].model' },
  // A tool added mid-conversation by value (tool_addition), or reported by a compaction block.
  { path: 'messages[].content[].tool.definition.model' },
  { path: 'messages[].content[].tool_changes[].tool.definition.model' },
]

/** OpenAI's endpoints and the servers that speak them. */
export const OPENAI_FIELDS: readonly ModelField[] = [
  FALLBACKS,
  // OpenRouter's model routing list.
  { path: 'models[]' },
  // Moderated completions and responses name the moderation model.
  { path: 'moderation.model' },
  // The Responses API's image_generation tool runs gpt-image-1 unless it names another.
  { path: 'tools[].model', defaultFor: { type: 'image_generation', model: 'gpt-image-1' } },
  { path: 'input[].tools[].model', defaultFor: { type: 'image_generation', model: 'gpt-image-1' } },
  // A Realtime session's transcription model.
  { path: 'input_audio_transcription.model' },
]

/** Gemini and Vertex AI's Google models: the body may name the path's model again, only to agree. */
export const GOOGLE_FIELDS: readonly ModelField[] = [
  { path: 'requests[].model', agrees: true },
  { path: 'generateContentRequest.model', agrees: true },
  { path: 'batch.model', agrees: true },
  { path: 'batch.inputConfig.requests.requests[].request.model', agrees: true },
]

/** Every field of `lists`, a path listed twice kept once (the first). */
function union (...lists: Array<readonly ModelField[]>): readonly ModelField[] {
  const seen = new Map<string, ModelField>()
  for (const field of lists.flat()) if (!seen.has(field.path)) seen.set(field.path, field)
  return [...seen.values()]
}

/** The fields read in a body of each family; Vertex AI serves all three formats. */
export const MODEL_FIELDS: Readonly<Record<RouteFamily, readonly ModelField[]>> = {
  anthropic: ANTHROPIC_FIELDS,
  openai: OPENAI_FIELDS,
  'azure-openai': OPENAI_FIELDS,
  gemini: GOOGLE_FIELDS,
  vertex: union(OPENAI_FIELDS, ANTHROPIC_FIELDS, GOOGLE_FIELDS),
  bedrock: ANTHROPIC_FIELDS,
}
