// History positions on the client side (gateway PROTOCOL.md §14, §16): the
// `$history/<topic>` copies, position order, and GET /history. A position is
// `<epoch>-<offset>`; the client only compares offsets within one epoch.
import { clientError } from './errors.js'

export const HISTORY_PREFIX = '$history/'

/** A `$history/<topic>` copy split into its topic, position (undefined outside historyTopics) and payload. */
export function parseCopy (topic: string, payload: Uint8Array): { topic: string, position: string | undefined, payload: Uint8Array } | null {
  if (!topic.startsWith(HISTORY_PREFIX)) return null
  const nl = payload.indexOf(0x0a)
  if (nl === -1) return null
  const position = new TextDecoder().decode(payload.subarray(0, nl))
  return { topic: topic.slice(HISTORY_PREFIX.length), position: position === '' ? undefined : position, payload: payload.subarray(nl + 1) }
}

function split (p: string): [string, number] {
  const dash = p.lastIndexOf('-')
  return [p.slice(0, dash), Number(p.slice(dash + 1))]
}

/** True when `p` comes after `than` (or `than` is from another epoch, or missing). */
export function isAfter (p: string, than: string | undefined): boolean {
  if (than === undefined) return true
  const [e1, o1] = split(p)
  const [e2, o2] = split(than)
  return e1 !== e2 || o1 > o2
}

export interface MissedMessage { id: string, topic: string, payload: Uint8Array, qos: number }
export interface Missed { recovered: boolean, position: string | undefined, messages: MissedMessage[] }

/** A payload of GET /events or GET /history: UTF-8 text, or base64 [P-15.3]. */
export function decodePayload (payload: string, encoding: string | undefined): Uint8Array {
  if (encoding !== 'base64') return new TextEncoder().encode(payload)
  const bin = atob(payload)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export function encodeBase64 (bytes: Uint8Array): string {
  let bin = ''
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(bin)
}

/** GET /history: what `filter` missed after `since`, or (without since) where the history stands [P-16.2]. */
export async function fetchMissed (fetchFn: typeof fetch, base: string, filter: string, since: string | undefined, token: string | undefined): Promise<Missed> {
  const url = `${base}/history?topic=${encodeURIComponent(filter)}${since === undefined ? '' : '&since=' + encodeURIComponent(since)}`
  let res: globalThis.Response
  try {
    res = await fetchFn(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  } catch (err) {
    throw clientError('RTW_CLIENT_NETWORK', (err as Error).message)
  }
  if (res.status !== 200) throw clientError('RTW_CLIENT_NETWORK', `GET /history answered ${res.status}`)
  const body = await res.json() as { recovered: boolean, position: string | null, messages: Array<{ id: string, topic: string, payload: string, encoding?: string, qos: number }> }
  return {
    recovered: body.recovered,
    position: body.position ?? undefined,
    messages: body.messages.map(m => ({ id: m.id, topic: m.topic, payload: decodePayload(m.payload, m.encoding), qos: m.qos }))
  }
}
