// The folders of src/ form layers: no folder imports another that imports it back, directly
// or through others. madge reads the import graph (type-only imports included: a type belongs
// to the module that owns its concept); this test collapses it to folders and looks for cycles.
import { fileURLToPath } from 'node:url'
import t from 'tap'
import madge from 'madge'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))

/** src/geo/address.ts -> "geo"; a file at the top of src/ is a unit of its own. */
function unitOf (file: string): string {
  const slash = file.indexOf('/')
  return slash === -1 ? file.replace(/\.ts$/, '') : file.slice(0, slash)
}

/** Every cycle in a graph of folders, each as the path that closes it. */
function cycles (graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const found: string[][] = []
  const seen = new Set<string>()
  const visit = (node: string, path: string[]): void => {
    const at = path.indexOf(node)
    if (at !== -1) {
      found.push([...path.slice(at), node])
      return
    }
    if (seen.has(node)) return
    for (const next of graph.get(node) ?? []) visit(next, [...path, node])
    seen.add(node)
  }
  for (const node of graph.keys()) visit(node, [])
  return found
}

t.test('cycles() finds a cycle between folders, and none in a layered graph', async (t) => {
  t.same(cycles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]])), [['a', 'b', 'c', 'a']])
  t.same(cycles(new Map([['a', new Set(['b', 'c'])], ['b', new Set(['c'])], ['c', new Set<string>()]])), [])
})

t.test('no import cycle between the folders of src/', async (t) => {
  const result = await madge(SRC, {
    fileExtensions: ['ts'],
    tsConfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
    detectiveOptions: { ts: { skipTypeImports: false }, es6: { skipTypeImports: false } },
  })
  const files = result.obj()
  t.ok(Object.keys(files).length > 20, `madge read the source tree (${Object.keys(files).length} files)`)
  const graph = new Map<string, Set<string>>()
  for (const [file, deps] of Object.entries(files)) {
    const from = unitOf(file)
    const edges = graph.get(from) ?? new Set<string>()
    for (const dep of deps) if (unitOf(dep) !== from) edges.add(unitOf(dep))
    graph.set(from, edges)
  }
  t.ok([...graph.values()].some((edges) => edges.size > 0), 'madge resolved imports between folders')
  t.same(cycles(graph).map((c) => c.join(' -> ')), [], 'folders that import each other in a circle')
})
