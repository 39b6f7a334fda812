// The broker rows of `npm run bench`: the gateway's embedded broker beside
// mosquitto (bench/lib/mosquitto.ts), the same load against each in the same
// run. Add a row by adding an entry here; bench/lib/broker-bench.ts runs them.
import { connectRate, fanOut, hold, idleMemory, type LoadResult, type Meter } from './lib/broker-load.js'
import type { Endpoint } from './lib/load-client.js'

/** One broker under test, as a row sees it. */
export interface BrokerTarget {
  name: 'gateway' | 'mosquitto'
  tcp: Endpoint
  ws: Endpoint
  /** The broker process, for its CPU and RSS. */
  pid: number
}

/** A default the row changes: only an abuse guard that one bench client trips (issue 15), and the output says so. */
export interface GuardLifted {
  env: Record<string, string>
  why: string
}

export interface BrokerRow {
  /** For BENCH_BROKER_ROWS. */
  id: string
  name: string
  unit: string
  /** Which way is better, for the ratio's reading. */
  better: 'higher' | 'lower'
  /** The goal: gateway/mosquitto at least `minRatio`, or the gateway's figure at most `max`. */
  goal?: { minRatio?: number, max?: number }
  /** What the operations of "CPU µs/op" are. */
  op: string
  lifted?: GuardLifted
  /** Run against a broker process of its own each round: memory figures must not inherit another row's heap. */
  fresh?: boolean
  /** Left out unless this environment variable is "1". */
  optIn?: string
  run: (target: BrokerTarget, meter: Meter) => Promise<LoadResult>
}

export const PAYLOAD_BYTES = 64
const durationS = Number(process.env.BENCH_DURATION ?? 5)
const warmupS = Number(process.env.BENCH_WARMUP ?? 1)

/** One publisher at full speed trips publishRate (10,000/s per client), which drops the excess and stalls a closed loop. */
const PUBLISH_RATE: GuardLifted = {
  env: { RTW_PUBLISH_RATE: '1000000000' },
  why: 'publishRate (10,000 PUBLISH/s per client, an abuse guard): the one publisher sends faster'
}
/** Thousands of connections from one address trip connectRate (200/s per address). */
const CONNECT_RATE: GuardLifted = {
  env: { RTW_CONNECT_RATE: '1000000000' },
  why: 'connectRate (200 new connections/s per address, an abuse guard): every bench connection comes from 127.0.0.x'
}

const IDLE = { count: Number(process.env.BENCH_IDLE_CONNECTIONS ?? 5000), warm: 200, concurrency: 50 }
const HOLD_CONNECTIONS = Number(process.env.BENCH_HOLD_CONNECTIONS ?? 50_000)

function fanOutRow (transport: 'tcp' | 'ws', subscribers: number, qos: 0 | 1, minRatio: number): BrokerRow {
  return {
    id: subscribers === 1 ? `${transport}-1to1-q${qos}` : `fanout-${transport}-q${qos}`,
    name: `${transport === 'tcp' ? 'TCP' : 'WebSocket'} fan-out 1→${subscribers}, QoS ${qos}`,
    unit: 'deliveries/s',
    better: 'higher',
    goal: { minRatio },
    op: 'delivery',
    lifted: PUBLISH_RATE,
    run: async (t, meter) => fanOut(t[transport], { subscribers, qos, payloadBytes: PAYLOAD_BYTES, window: subscribers === 1 ? 100 : 400, warmupS, durationS }, meter)
  }
}

function idleRow (transport: 'tcp' | 'ws'): BrokerRow {
  return {
    id: `idle-${transport}`,
    name: `idle memory per ${transport === 'tcp' ? 'TCP' : 'WebSocket'} connection`,
    unit: 'KiB',
    better: 'lower',
    goal: { max: 12 },
    op: 'connect',
    lifted: CONNECT_RATE,
    fresh: true,
    run: async (t, meter) => idleMemory(t[transport], t.pid, IDLE, meter)
  }
}

export const BROKER_ROWS: BrokerRow[] = [
  fanOutRow('tcp', 10, 0, 1.5),
  fanOutRow('tcp', 10, 1, 1.5),
  fanOutRow('ws', 10, 0, 0.8),
  fanOutRow('ws', 10, 1, 0.8),
  fanOutRow('ws', 1, 1, 0.8),
  idleRow('tcp'),
  idleRow('ws'),
  {
    id: 'connect-tcp',
    name: 'TCP connects',
    unit: 'connects/s',
    better: 'higher',
    goal: { minRatio: 0.8 },
    op: 'connect',
    lifted: CONNECT_RATE,
    run: async (t, meter) => connectRate(t.tcp, 20, warmupS, durationS, meter)
  },
  {
    id: 'hold-ws',
    name: `${HOLD_CONNECTIONS.toLocaleString('en-US')} idle WebSocket connections held, RSS`,
    unit: 'MiB',
    better: 'lower',
    goal: { max: 600 },
    op: 'connect',
    lifted: CONNECT_RATE,
    fresh: true,
    optIn: 'BENCH_HOLD',
    run: async (t, meter) => hold(t.ws, t.pid, HOLD_CONNECTIONS, meter)
  }
]
