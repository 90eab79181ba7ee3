import type { DialectName } from '../config/schema.js'
import { anthropic } from './anthropic.js'
import { gemini } from './gemini.js'
import { openai } from './openai.js'
import type { Dialect } from './types.js'

export type { Dialect } from './types.js'

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = { anthropic, openai, gemini }
