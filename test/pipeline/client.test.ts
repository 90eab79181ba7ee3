// Stage client, on its own: the configured client a token names, or a 401.
import { createHash } from 'node:crypto'
import t from 'tap'
import { authenticateClient } from '../../src/pipeline/client.js'
import { refusalStatus } from '../support/runtime.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

t.test('which client a request comes from, row by row', async (t) => {
  const clients = new Map([[sha('tok-payments'), 'payments'], [sha('tok-research'), 'research']])
  const rows: Array<[string, Record<string, string>, string | 401]> = [
    ['Authorization: Bearer', { authorization: 'Bearer tok-payments' }, 'payments'],
    ['bearer is case-insensitive, the token trimmed', { authorization: 'bearer  tok-research ' }, 'research'],
    ['x-api-key (the Anthropic SDK)', { 'x-api-key': 'tok-payments' }, 'payments'],
    ['api-key (Azure)', { 'api-key': 'tok-research' }, 'research'],
    ['x-goog-api-key (Gemini)', { 'x-goog-api-key': 'tok-payments' }, 'payments'],
    ['an unknown token', { authorization: 'Bearer tok-other' }, 401],
    ['no token', {}, 401],
    ['an empty bearer', { authorization: 'Bearer ' }, 401],
    ['a Basic credential is not a token', { authorization: 'Basic dG9rLXBheW1lbnRz' }, 401],
  ]
  for (const [name, headers, want] of rows) {
    if (want === 401) {
      t.equal(await refusalStatus(() => authenticateClient(clients, headers)), 401, name)
    } else {
      t.equal(authenticateClient(clients, headers), want, name)
    }
  }
  t.equal(authenticateClient(new Map(), {}), null, 'without clients configured nobody is authenticated, and nobody is refused')
})
