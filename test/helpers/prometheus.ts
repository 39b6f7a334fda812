// Reads a Prometheus text exposition (GET /metrics) into samples, for assertions.
export interface Sample { name: string, labels: Record<string, string>, value: number }

export interface Scrape {
  text: string
  samples: Sample[]
  /** The TYPE line of each metric family. */
  types: Map<string, string>
  /** The value of the one sample with this name and (at least) these labels; undefined when none. */
  value: (name: string, labels?: Record<string, string>) => number | undefined
  /** The sum over every sample with this name and (at least) these labels. */
  sum: (name: string, labels?: Record<string, string>) => number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parseExposition (text: string): Scrape {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ')
      types.set(name as string, type as string)
      continue
    }
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1')
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  const matching = (name: string, labels: Record<string, string> = {}): Sample[] =>
    samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return {
    text,
    samples,
    types,
    value: (name, labels) => matching(name, labels)[0]?.value,
    sum: (name, labels) => matching(name, labels).reduce((a, s) => a + s.value, 0)
  }
}

/** GET /metrics, checked to be Prometheus's text format, parsed. */
export async function scrape (httpUrl: string, token?: string): Promise<Scrape> {
  const res = await fetch(`${httpUrl}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`)
  const type = res.headers.get('content-type') ?? ''
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`/metrics content-type ${type}`)
  return parseExposition(await res.text())
}
