// Stacked line panels as a self-contained SVG, one panel per series over a shared x axis (the
// soak's memory, descriptors and event-loop delay over time); bench/plot.ts draws series on one
// axis for the benchmark. No plotting dependency.

export interface Panel {
  title: string
  ys: number[]
  /** A value drawn as a dashed line (a band's edges, a target). */
  marks?: Array<{ y: number, label: string }>
}

export interface Chart {
  title: string
  xLabel: string
  xs: number[]
  panels: Panel[]
  /** An x value drawn as a vertical dashed line (the end of warm-up). */
  xMark?: { x: number, label: string }
}

const W = 720
const PANEL_H = 150
const LEFT = 70
const RIGHT = 20
const TOP = 40
const GAP = 40

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2))

/** Evenly spaced, rounded tick values covering [lo, hi]. */
function ticks (lo: number, hi: number, count = 4): number[] {
  const span = hi - lo || Math.abs(hi) || 1
  const raw = span / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag
  const out: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)))
  return out
}

export function chartSvg (chart: Chart): string {
  const height = TOP + chart.panels.length * (PANEL_H + GAP) + 10
  const plotW = W - LEFT - RIGHT
  const xLo = Math.min(...chart.xs)
  const xHi = Math.max(...chart.xs)
  const xOf = (x: number): number => LEFT + (xHi === xLo ? 0 : ((x - xLo) / (xHi - xLo)) * plotW)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(chart.title)}</text>`,
  ]
  chart.panels.forEach((panel, p) => {
    const top = TOP + p * (PANEL_H + GAP)
    const values = [...panel.ys, ...(panel.marks ?? []).map((m) => m.y)].filter(Number.isFinite)
    const rawLo = Math.min(0, ...values)
    const rawHi = Math.max(...values, rawLo + 1e-9)
    const ys = ticks(rawLo, rawHi * 1.05)
    const yLo = Math.min(rawLo, ys[0] ?? rawLo)
    const yHi = Math.max(rawHi * 1.05, ys.at(-1) ?? rawHi)
    const yOf = (y: number): number => top + PANEL_H - ((y - yLo) / (yHi - yLo || 1)) * PANEL_H
    out.push(`<text x="${LEFT}" y="${top - 6}">${escape(panel.title)}</text>`)
    out.push(`<rect x="${LEFT}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`)
    for (const y of ys) {
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yOf(y).toFixed(1)}" y2="${yOf(y).toFixed(1)}" stroke="#eee"/>`)
      out.push(`<text x="${LEFT - 6}" y="${(yOf(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y)}</text>`)
    }
    for (const m of panel.marks ?? []) {
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yOf(m.y).toFixed(1)}" y2="${yOf(m.y).toFixed(1)}" stroke="#c33" stroke-dasharray="4 3"/>`)
      out.push(`<text x="${LEFT + plotW - 4}" y="${(yOf(m.y) - 3).toFixed(1)}" text-anchor="end" fill="#c33">${escape(m.label)}</text>`)
    }
    if (chart.xMark !== undefined) {
      const x = xOf(chart.xMark.x).toFixed(1)
      out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + PANEL_H}" stroke="#888" stroke-dasharray="2 3"/>`)
      if (p === 0) out.push(`<text x="${x}" y="${top + 12}" fill="#666"> ${escape(chart.xMark.label)}</text>`)
    }
    const points = panel.ys.map((y, i) => (Number.isFinite(y) ? `${xOf(chart.xs[i] ?? 0).toFixed(1)},${yOf(y).toFixed(1)}` : '')).filter((s) => s !== '')
    out.push(`<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="${points.join(' ')}"/>`)
    for (const x of ticks(xLo, xHi, 6)) {
      out.push(`<text x="${xOf(x).toFixed(1)}" y="${top + PANEL_H + 14}" text-anchor="middle" fill="#444">${fmt(x)}</text>`)
    }
  })
  out.push(`<text x="${W / 2}" y="${height - 4}" text-anchor="middle" fill="#444">${escape(chart.xLabel)}</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
