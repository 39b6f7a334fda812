// Where the broker keeps its state and how it routes messages (docs/CLUSTER.md):
//  - memory: Aedes's defaults, lost with the process (the Mosquitto default);
//  - dataDir: aedes-persistence-level in <dataDir>/broker, one process, on disk;
//  - Redis: aedes-persistence-redis for state and mqemitter-redis for routing,
//    shared by every node of a cluster.
// Both persistence packages hold retained messages, persistent sessions (their
// subscriptions and queued and in-flight QoS 1/2 messages) and wills.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Level } from 'level'
import type { Redis } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
import aedesPersistenceLevel from 'aedes-persistence-level'
import aedesPersistenceRedis from 'aedes-persistence-redis'

/** What Aedes is constructed with; undefined parts are Aedes's in-memory defaults. */
export interface BrokerBackends {
  kind: 'memory' | 'level' | 'redis'
  persistence?: unknown
  mq?: unknown
  /**
   * True when a QoS 1 message is stored somewhere that outlives this process:
   * the broker then acknowledges it only after it was stored (broker.ts).
   */
  durable: boolean
  /** Closes what Aedes does not: the LevelDB. Call after the broker closed. */
  close: () => Promise<void>
}

/** The three Redis connections a clustered broker uses; the caller owns them. */
export interface BrokerRedis {
  /** Commands: retained messages, sessions, wills. */
  db: Redis
  /** Publishes of routed messages. */
  pub: Redis
  /** Pattern subscriptions of routed messages (subscriber mode). */
  sub: Redis
}

export function memoryBackends (): BrokerBackends {
  return { kind: 'memory', durable: false, close: async () => {} }
}

/** One process's state in <dir> (LevelDB allows one opener per directory: a second process fails here). */
export async function levelBackends (dir: string): Promise<BrokerBackends> {
  mkdirSync(dir, { recursive: true })
  const db = new Level<string | Buffer, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: Error }).cause
    throw new Error(`broker state in ${dir}: cannot open it (${cause?.message ?? (err as Error).message}); is another gateway using this dataDir?`)
  }
  return {
    kind: 'level',
    persistence: aedesPersistenceLevel(db as never),
    durable: true,
    async close () {
      if (db.status === 'open') await db.close()
    }
  }
}

export function levelDir (dataDir: string): string {
  return join(dataDir, 'broker')
}

/**
 * The cluster's shared state and routing. While the publishing connection is
 * down, messages are routed to this node's own subscribers only: the other
 * nodes cannot be reached anyway, and this node's clients keep talking to each
 * other (docs/CLUSTER.md, "Redis down").
 */
export function redisBackends (redis: BrokerRedis, onStreamError: (err: Error) => void = () => {}): BrokerBackends {
  const mq = MQEmitterRedis({ pubConn: redis.pub, subConn: redis.sub }) as unknown as LocalEmit & { emit: LocalEmit['_emit'] }
  // mqemitter-redis keeps MQEmitter's own, local emit as _emit (mqemitter-redis.js).
  if (typeof mq._emit !== 'function') throw new Error('mqemitter-redis has no _emit: this version is not supported')
  // Its connection errors are the link's, already logged by its owner (gateway/cluster/redis-link.ts);
  // an 'error' event with no listener would end the process.
  mq.state.on('error', () => {})
  // A filter with + or # becomes a Redis PSUBSCRIBE pattern (+ and # turned
  // into *), in which [ ] ? * and \ are glob syntax: a filter naming them
  // literally, such as a/[x]/+, would miss a/[x]/b published on another node,
  // lost without a trace. They are escaped; + and # stay the only wildcards.
  // The pattern may still be wider than the filter (* crosses levels), and
  // Aedes matches each message against the real filter anyway.
  if (typeof mq._subTopic !== 'function' || typeof mq._containsWildcard !== 'function') throw new Error('mqemitter-redis has no _subTopic: this version is not supported')
  const pattern = mq._subTopic.bind(mq)
  const wild = mq._containsWildcard.bind(mq)
  mq._subTopic = topic => wild(topic) ? pattern(escapeGlob(topic)) : topic
  const viaRedis = mq.emit.bind(mq)
  const local = mq._emit.bind(mq)
  mq.emit = (msg, done) => {
    if (redis.pub.status !== 'ready') { local(msg, done); return }
    // A PUBLISH Redis did not confirm (it died, and the connection had not
    // noticed yet) will not come back through it to this node's subscribers:
    // it is delivered locally, as when the link is known to be down, and only
    // then does a QoS 1 publisher get its PUBACK (ackAfterStore). Were Redis to
    // have taken it just before dying, a local subscriber may get it twice,
    // which QoS 1 (at least once) allows.
    viaRedis(msg, err => { if (err === undefined || err === null) done?.(); else local(msg, done) })
  }
  // mqemitter-redis closes by QUIT and waits for both connections to end, which
  // a connection that is reconnecting to a Redis that is gone never does: the
  // node would hang on shutdown. Such connections are dropped instead.
  const close = mq.close.bind(mq)
  mq.close = (done) => {
    if (redis.pub.status === 'ready' && redis.sub.status === 'ready') { close(done); return }
    redis.pub.disconnect()
    redis.sub.disconnect()
    mq._close(done)
  }
  return {
    kind: 'redis',
    persistence: guardStreams(aedesPersistenceRedis({ conn: redis.db }), onStreamError),
    mq,
    durable: true,
    close: async () => {}
  }
}

/**
 * Aedes reads some persistence streams with `.pipe()` and no error listener
 * (the retained messages of a SUBSCRIBE, lib/handlers/subscribe.js), so a
 * Redis command failing while Redis is away would end the process with an
 * unhandled 'error'. Every stream the persistence hands out gets a listener
 * here: the read ends early (the client misses those retained messages, as
 * docs/CLUSTER.md "Redis down" says), it is logged, and the node keeps serving.
 */
function guardStreams<P extends object> (persistence: P, onError: (err: Error) => void): P {
  const streams = ['createRetainedStream', 'createRetainedStreamCombi', 'outgoingStream', 'streamWill', 'getClientList']
  const p = persistence as Record<string, unknown>
  for (const name of streams) {
    const method = p[name]
    if (typeof method !== 'function') continue
    p[name] = function (this: unknown, ...args: unknown[]) {
      const stream = (method as (...a: unknown[]) => unknown).apply(this, args)
      ;(stream as { on?: (e: string, f: (err: Error) => void) => void }).on?.('error', onError)
      return stream
    }
  }
  return persistence
}

/** Redis glob syntax, escaped with a backslash (https://redis.io/docs/latest/commands/psubscribe/). */
export function escapeGlob (filter: string): string {
  return filter.replace(/[\\[\]?*]/g, '\\$&')
}

interface LocalEmit {
  _subTopic: (topic: string) => string
  _containsWildcard: (topic: string) => boolean
  close: (done?: () => void) => void
  _close: (done?: () => void) => void
  _emit: (msg: { topic: string }, done?: (err?: Error) => void) => void
  state: { on: (event: 'error', fn: (err: Error) => void) => void }
}
