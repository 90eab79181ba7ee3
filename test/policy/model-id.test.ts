// Canonical model ids: one name for a model whichever provider's spelling a request used; and,
// per API, a wrapper the gateway cannot strip is not understood (never matched as written).
import t from 'tap'
import { DIALECTS, type DialectName } from '../../src/dialects/registry.js'
import { canonicalModelId, readModelId } from '../../src/policy/model-id.js'

t.test('every spelling of Claude Sonnet 4 is one canonical id', async (t) => {
  for (const id of [
    'claude-sonnet-4-20250514',
    'Claude-Sonnet-4-20250514',
    'claude-sonnet-4@20250514',
    'publishers/anthropic/models/claude-sonnet-4@20250514',
    'projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514',
    'anthropic/claude-sonnet-4-20250514',
    'anthropic.claude-sonnet-4-20250514-v1:0',
    'us.anthropic.claude-sonnet-4-20250514-v1:0',
    'apac.anthropic.claude-sonnet-4-20250514-v1:0',
    'global.anthropic.claude-sonnet-4-20250514-v1:0',
    'us-gov.anthropic.claude-sonnet-4-20250514-v1:0',
    'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0',
    'arn:aws:bedrock:ap-southeast-1:123456789012:inference-profile/apac.anthropic.claude-sonnet-4-20250514-v1:0',
    'arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-sonnet-4-20250514-v1:0',
  ]) t.equal(canonicalModelId(id), 'claude-sonnet-4-20250514', id)
})

t.test('other providers\' prefixes and suffixes', async (t) => {
  for (const [id, canonical] of [
    ['models/gemini-2.5-pro', 'gemini-2.5-pro'],
    ['google/gemini-2.5-flash', 'gemini-2.5-flash'],
    ['publishers/google/models/gemini-2.5-pro', 'gemini-2.5-pro'],
    ['gemini-2.0-flash-001', 'gemini-2.0-flash-001'],
    ['gemini-1.5-pro@002', 'gemini-1.5-pro'],
    ['claude-3-5-haiku@latest', 'claude-3-5-haiku'],
    ['amazon.nova-pro-v1:0', 'nova-pro'],
    ['eu.amazon.nova-lite-v1:0', 'nova-lite'],
    ['meta.llama3-1-70b-instruct-v1:0', 'llama3-1-70b-instruct'],
    ['anthropic.claude-3-sonnet-20240229-v1:0:200k', 'claude-3-sonnet-20240229'],
    ['gpt-4o', 'gpt-4o'],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'gpt-4o-mini-2024-07-18'],
    ['ft:gpt-4.1-2025-04-14:acme:support-bot:B7xYz9:ckpt-step-100', 'gpt-4.1-2025-04-14'],
    ['llama3.1:70b', 'llama3.1:70b'],
  ] as const) t.equal(canonicalModelId(id), canonical, id)
})

t.test('each API\'s ids: ordinary ones are read, a wrapper the gateway cannot strip is not understood', async (t) => {
  const rows: Array<[DialectName, string, string | RegExp]> = [
    // Ordinary ids keep working (a string: the canonical id).
    ['openai', 'gpt-4o', 'gpt-4o'],
    ['openai', 'gpt-4.1-mini', 'gpt-4.1-mini'],
    ['openai', 'ft:gpt-4o-mini-2024-07-18:my-org::abc123', 'gpt-4o-mini-2024-07-18'],
    ['openai', 'openai/gpt-4o', 'gpt-4o'],
    ['anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5'],
    ['anthropic', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929'],
    ['gemini', 'gemini-2.5-flash', 'gemini-2.5-flash'],
    ['gemini', 'models/gemini-2.5-flash', 'gemini-2.5-flash'],
    ['openai-compatible', 'llama3.1:8b', 'llama3.1:8b'],
    ['openai-compatible', 'gpt-oss:20b-cloud', 'gpt-oss:20b-cloud'],
    ['openai-compatible', 'meta-llama/Llama-3.1-8B-Instruct', 'meta-llama/llama-3.1-8b-instruct'],
    ['openai-compatible', 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 'hf.co/bartowski/llama-3.2-1b-instruct-gguf:q4_k_m'],
    ['openai-compatible', 'ft:gpt-4o-mini-2024-07-18:my-org::abc123', 'gpt-4o-mini-2024-07-18'],
    ['vertex', 'claude-sonnet-4@20250514', 'claude-sonnet-4-20250514'],
    ['vertex', 'google/gemini-2.5-flash', 'gemini-2.5-flash'],
    ['vertex', 'xai/grok-4', 'grok-4'],
    ['bedrock', 'anthropic.claude-sonnet-4-20250514-v1:0', 'claude-sonnet-4-20250514'],
    ['bedrock', 'apac.amazon.nova-pro-v1:0', 'nova-pro'],
    ['bedrock', 'arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-70b-instruct-v1:0', 'llama3-1-70b-instruct'],
    ['openai', 'gpt-4o-mini-2024-07-18.ft-0e208cf33a6a466994aff31a08aba678', 'gpt-4o-mini-2024-07-18'],
    ['azure-openai', 'gpt-35-turbo-0613.FT-B044A9D3CF9C4228B5D393567F693B83', 'gpt-35-turbo-0613'],
    ['anthropic-compatible', 'unsloth/Qwen3-Coder-30B-A3B-Instruct', 'unsloth/qwen3-coder-30b-a3b-instruct'],
    ['anthropic-compatible', 'qwen3-coder:30b', 'qwen3-coder:30b'],
    ['anthropic-compatible', 'anthropic/claude-sonnet-4-5', 'claude-sonnet-4-5'],
    // Wrappers the gateway cannot strip (a RegExp: what the reason says).
    ['bedrock', 'xx.anthropic.claude-sonnet-4-20250514-v1:0', /the inference-profile prefix "xx\." is not one the gateway knows/],
    ['bedrock', 'arn:aws:bedrock:us-east-1::foundation-model/xx.anthropic.claude-sonnet-4-20250514-v1:0', /inference-profile prefix "xx\."/],
    ['bedrock', 'us.acme.claude-sonnet-4-v1:0', /the model vendor "acme\." is not one the gateway knows/],
    ['bedrock', 'acme.claude-sonnet-4-v1:0', /the model vendor "acme\."/],
    ['bedrock', 'gemini-2.5-flash', /"gemini-2\.5-flash" is not a Bedrock model id/],
    ['bedrock', 'mymodel', /"mymodel" is not a Bedrock model id/],
    ['bedrock', 'newco.2-model-v1:0', /"newco\.2-model-v1:0" is not a Bedrock model id/],
    ['bedrock', 'us.newco.text-v1:0', /the model vendor "newco\."/],
    ['azure-openai', 'gpt-4o-mini.ft-billing', /not Azure's BASE\.ft-ID/],
    ['anthropic-compatible', 'ft:claude', /not ft:BASE:ORG:SUFFIX:ID/],
    ['anthropic-compatible', 'zz.anthropic.claude-sonnet-4-5', /inference-profile prefix "zz\."/],
    ['bedrock', 'anthropic/claude-sonnet-4-5@x@y', /"@" in a model id is a wrapper the gateway does not know for the Bedrock API/],
    ['anthropic', 'xx.anthropic.claude-sonnet-4-20250514-v1:0', /inference-profile prefix "xx\."/],
    ['openai-compatible', 'zz.anthropic.claude-sonnet-4-5', /inference-profile prefix "zz\."/],
    ['openai', 'ft:gpt-4o-mini', /a fine-tuned model id \("ft:\.\.\."\) that is not ft:BASE:ORG:SUFFIX:ID/],
    ['openai', 'ft:gpt-4o-mini:org::id:extra:parts', /not ft:BASE:ORG:SUFFIX:ID/],
    ['openai-compatible', 'ft:', /not ft:BASE:ORG:SUFFIX:ID/],
    ['openai', 'curie:ft-acme-2023-01-01', /":" in a model id is a wrapper the gateway does not know for the OpenAI API/],
    ['openai', 'router/gpt-4o', /"\/" in a model id is a wrapper the gateway does not know for the OpenAI API/],
    ['anthropic', 'vendor/claude-sonnet-4-5', /"\/" in a model id/],
    ['anthropic', 'claude-sonnet-4-5:thinking', /":" in a model id/],
    ['gemini', 'tunedModels/my-tune', /a tuned Gemini model \(tunedModels\/\.\.\.\) does not say which model it was tuned from/],
    ['gemini', 'models/gemini-2.5-flash:latest', /":" in a model id is a wrapper the gateway does not know for the Gemini API/],
    ['vertex', 'projects/p/locations/l/models/123', /"\/" in a model id/],
    ['openai', 'arn:aws:bedrock:us-east-1:1:application-inference-profile/x', /an ARN of bedrock resource type "application-inference-profile" does not say which model it is/],
    ['openai-compatible', 'arn:aws:sagemaker:us-east-1:1:endpoint/x', /an ARN of sagemaker resource type "endpoint"/],
  ]
  for (const [dialect, id, want] of rows) {
    const read = readModelId(id, DIALECTS[dialect].ids)
    if (typeof want === 'string') t.same(read, { canonical: want }, `${dialect}: ${id}`)
    else t.match(read, { notUnderstood: want }, `${dialect}: ${id}`)
  }
})
