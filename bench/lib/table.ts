// A plain-text table, columns padded to fit; numbers right-aligned.
export function renderTable (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const numeric = header.map((_, i) => rows.every(r => /^[-\d.,×x%!]*$/.test(r[i] ?? '')))
  const line = (cells: string[]): string => cells
    .map((c, i) => numeric[i] === true ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))
    .join('  ').trimEnd()
  return [line(header), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export function fmtInt (n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'
}

export function fmtMs (n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : '-'
}

export function fmtRatio (n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) + '×' : '-'
}
