// Keys that some servers read as another key. Go's encoding/json (Ollama, many OpenAI-compatible
// servers) fills a struct field from any object key equal to its name under Unicode simple case
// folding, and the last such key wins: `{"model":"a","MODEL":"b"}` is read as "b" there, as "a"
// by JavaScript. ASP.NET binds form fields ignoring case too. A key the gateway reads a model
// through must therefore be the only key in its object that folds to that name.
//
// Go folds each rune to the smallest rune of its simple-fold orbit (encoding/json/fold.go,
// foldRune) and ASCII letters to upper case. The only runes outside ASCII whose orbit holds an
// ASCII letter are the Kelvin sign U+212A (K, k) and the long s U+017F (S, s); every other rune
// folds to something that is not ASCII. So, for an ASCII name, this is Go's rule exactly.

const KELVIN = 0x212a
const LONG_S = 0x17f

function foldCode (c: number): number {
  if (c >= 0x61 && c <= 0x7a) return c - 0x20
  if (c === KELVIN) return 0x4b
  if (c === LONG_S) return 0x53
  return c
}

/**
 * Whether Go's encoding/json would fill the field `name` (ASCII, as the gateway's field names
 * are) from the key `key`: equal, or equal once case is folded as Go folds it.
 */
export function foldsTo (key: string, name: string): boolean {
  if (key === name) return true
  // Each of K and ſ is one UTF-16 unit, as every ASCII letter: lengths must match.
  if (key.length !== name.length) return false
  for (let i = 0; i < key.length; i++) {
    if (foldCode(key.charCodeAt(i)) !== foldCode(name.charCodeAt(i))) return false
  }
  return true
}
