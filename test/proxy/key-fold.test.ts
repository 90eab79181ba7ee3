// Go's encoding/json key folding, as the gateway applies it to the names it reads a model through.
import t from 'tap'
import { foldsTo } from '../../src/proxy/key-fold.js'
import { goFold } from '../support/json-readers.js'

t.test('a key folds to a name as Go folds it', async (t) => {
  for (const [key, name, folds] of [
    ['model', 'model', true],
    ['MODEL', 'model', true],
    ['mOdEl', 'model', true],
    ['fallbac\u212as', 'fallbacks', true], // Kelvin sign
    ['fallback\u017f', 'fallbacks', true], // long s
    ['\u017fession', 'session', true],
    ['model\u0131d', 'modelId', false], // dotless i folds only to itself in Go
    ['model\u0130d', 'modelId', false], // dotted capital I too
    ['mode1', 'model', false],
    ['model ', 'model', false],
    ['modelx', 'model', false],
    ['m\u00f6del', 'model', false],
  ] as const) {
    t.equal(foldsTo(key, name), folds, `${JSON.stringify(key)} ${folds ? 'folds' : 'does not fold'} to ${name}`)
    t.equal(goFold(key) === goFold(name), folds, `${JSON.stringify(key)}: the differential suite's Go reader agrees`)
  }
})
