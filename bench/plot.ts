// Line charts as plain SVG for the benchmark's results: a few series over a linear or
// logarithmic x axis, with a dashed line for a target. No plotting library: the charts are
// simple and the SVG is written as text.

export interface Series {
  name: string
  points: ReadonlyArray<readonly [number, number]>
}

export interface Chart {
  title: string
  xLabel: string
  yLabel: string
  series: readonly Series[]
  logX?: boolean
  /** A horizontal line at this y (a target), with its label. */
  target?: { y: number, label: string }
  /** Format of a tick on the x axis. */
  xTick?: (x: number) => string
}

const W = 720
const H = 400
const M = { left: 70, right: 170, top: 40, bottom: 50 }
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd']

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Ticks at round values covering [lo, hi]. */
function niceTicks (lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1
  const raw = span / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out: number[] = []
  for (let v = Math.floor(lo / step) * step; v <= hi + step / 2; v += step) out.push(Number(v.toPrecision(12)))
  return out
}

export function lineChart (c: Chart): string {
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = [...c.series.flatMap((s) => s.points.map((p) => p[1])), ...(c.target === undefined ? [] : [c.target.y])]
  const fx = c.logX === true ? Math.log10 : (x: number) => x
  const x0 = Math.min(...xs.map(fx))
  const x1 = Math.max(...xs.map(fx))
  const yTicks = niceTicks(Math.min(0, ...ys), Math.max(...ys) * 1.05)
  const y0 = yTicks[0] ?? 0
  const y1 = yTicks[yTicks.length - 1] ?? 1
  const px = (x: number): number => M.left + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - M.left - M.right)
  const py = (y: number): number => H - M.bottom - ((y - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom)
  const xTicks = c.logX === true ? [...new Set(xs)].sort((a, b) => a - b) : niceTicks(Math.min(...xs), Math.max(...xs))
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(c.title)}</text>`,
  ]
  for (const t of yTicks) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end">${esc(String(t))}</text>`)
  }
  for (const t of xTicks) {
    out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 4}" stroke="black"/>`)
    out.push(`<text x="${px(t)}" y="${H - M.bottom + 17}" text-anchor="middle">${esc(c.xTick?.(t) ?? String(t))}</text>`)
  }
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="black"/>`)
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="black"/>`)
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(c.xLabel)}</text>`)
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`)
  if (c.target !== undefined) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(c.target.y)}" y2="${py(c.target.y)}" stroke="#555" stroke-dasharray="6 4"/>`)
    out.push(`<text x="${W - M.right + 6}" y="${py(c.target.y) + 4}" fill="#555">${esc(c.target.label)}</text>`)
  }
  c.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? 'black'
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`)
    out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`)
    for (const p of pts) { const [x, y] = p.split(','); out.push(`<circle cx="${x ?? 0}" cy="${y ?? 0}" r="3" fill="${colour}"/>`) }
    out.push(`<rect x="${W - M.right + 8}" y="${M.top + 20 * i}" width="12" height="3" fill="${colour}"/>`)
    out.push(`<text x="${W - M.right + 24}" y="${M.top + 20 * i + 5}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
