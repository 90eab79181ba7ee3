// Canonical model ids: one name for a model whichever provider's spelling a request used.
import t from 'tap'
import { canonicalModelId } from '../../src/policy/model-id.js'

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
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'ft:gpt-4o-mini-2024-07-18:acme::abc123'],
    ['llama3.1:70b', 'llama3.1:70b'],
  ] as const) t.equal(canonicalModelId(id), canonical, id)
})
