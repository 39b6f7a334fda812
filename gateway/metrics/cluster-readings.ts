// A cluster's `$SYS/broker/…` and `$SYS/rtw/…` are the sum of its nodes
// [P-12.10]: each node stores its reading in Redis every interval, and one
// node, the live one with the smallest id, adds them up and publishes the sum,
// so the retained values have one writer. Pure: encode, decode, sum, leader.
import type { Reading } from './sys-topics.js'

/** The Redis hash of every node's latest reading, by node id (plugins/sys.ts). */
export const READINGS = 'rtw:sys:readings'

/** JSON has no Infinity: the bucket bounds are the same on every node and are left out. */
export function encodeReading (r: Reading): string {
  return JSON.stringify({ ...r, latency: { cumulative: r.latency.cumulative } })
}

const isCounts = (v: unknown): v is Record<string, number> =>
  typeof v === 'object' && v !== null && Object.values(v).every(n => typeof n === 'number' && Number.isFinite(n))

/** A reading another node stored, with this node's bucket bounds; null when it is not one. */
export function decodeReading (text: string, bounds: readonly number[]): Reading | null {
  let v: unknown
  try { v = JSON.parse(text) } catch { return null }
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  const numbers = ['at', 'uptimeS', 'clients', 'subscriptions', 'received', 'sent', 'inFlight']
  if (!numbers.every(k => typeof o[k] === 'number' && Number.isFinite(o[k]))) return null
  if (!isCounts(o.connections) || !isCounts(o.dropped)) return null
  if (typeof o.requests !== 'object' || o.requests === null || !Object.values(o.requests).every(isCounts)) return null
  if (typeof o.up !== 'object' || o.up === null || !Object.values(o.up).every(b => typeof b === 'boolean')) return null
  const cumulative = (o.latency as { cumulative?: unknown } | undefined)?.cumulative
  if (!Array.isArray(cumulative) || cumulative.length !== bounds.length || !cumulative.every(n => typeof n === 'number')) return null
  return { ...(o as unknown as Reading), latency: { bounds: [...bounds], cumulative } }
}

function addInto (into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n
}

/** Several nodes' readings as one: counts add up, uptime is the oldest node's, a dependency is up only if it is up on every node. */
export function sumReadings (readings: readonly Reading[], nodes: string[]): Reading {
  const first = readings[0]
  if (first === undefined) throw new Error('sumReadings: no reading')
  const sum: Reading = {
    at: 0, uptimeS: 0, clients: 0, connections: {}, subscriptions: 0, received: 0, sent: 0, dropped: {}, inFlight: 0,
    requests: {}, latency: { bounds: first.latency.bounds, cumulative: first.latency.bounds.map(() => 0) }, up: {}, nodes
  }
  for (const r of readings) {
    sum.at = Math.max(sum.at, r.at)
    sum.uptimeS = Math.max(sum.uptimeS, r.uptimeS)
    sum.clients += r.clients
    sum.subscriptions += r.subscriptions
    sum.received += r.received
    sum.sent += r.sent
    sum.inFlight += r.inFlight
    addInto(sum.connections, r.connections)
    addInto(sum.dropped, r.dropped)
    for (const [service, byStatus] of Object.entries(r.requests)) addInto(sum.requests[service] ??= {}, byStatus)
    r.latency.cumulative.forEach((n, i) => { sum.latency.cumulative[i] = (sum.latency.cumulative[i] as number) + n })
    for (const [name, up] of Object.entries(r.up)) sum.up[name] = (sum.up[name] ?? true) && up
  }
  return sum
}

/** The node that publishes the cluster's sum: the smallest id among the live ones, so every node agrees without a vote. */
export function isSysLeader (self: string, others: readonly string[]): boolean {
  return others.every(o => self < o)
}
