import { anthropic, anthropicCompatible } from './anthropic.js'
import { azureOpenai } from './azure-openai.js'
import { bedrock } from './bedrock.js'
import { gemini } from './gemini.js'
import { openai, openaiCompatible } from './openai.js'
import type { Dialect, DialectName } from './types.js'
import { vertex } from './vertex.js'

export type { Dialect, DialectName, ModelSource } from './types.js'

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = {
  anthropic,
  'anthropic-compatible': anthropicCompatible,
  openai,
  'openai-compatible': openaiCompatible,
  'azure-openai': azureOpenai,
  gemini,
  vertex,
  bedrock,
}
