// Which node of its cluster this process is [P-5.1]. A node keeps its name,
// and so its id, across restarts: replies and async results meant for the
// node that accepted a request (its Redis reply channel, its RabbitMQ reply
// queue) still reach it after a crash. Its boot epoch changes with every
// start, so the correlation ids of one life never repeat those of another.
import { createHash, randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { NODE_ID_LENGTH } from '../../core/correlator.js'

export interface NodeIdentity {
  /** What the operator calls the node: nodeId, or <hostname>:<httpPort>[/<pm2 instance>]. */
  readonly name: string
  /** The node id on the wire: NODE_ID_LENGTH base64url characters derived from the name. */
  readonly id: string
  /** This start of the node: its start time in ms, base 36, fixed width, so prefixes never run into the random part. */
  readonly epoch: string
  /** False when the name is made up for this start (HTTP port 0 and no nodeId): nothing survives a restart then. */
  readonly stable: boolean
}

const EPOCH_WIDTH = 9

export function nodeIdOf (name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('base64url').slice(0, NODE_ID_LENGTH)
}

/**
 * The node's identity: the configured nodeId, else its host and HTTP port
 * (what makes two nodes on one machine different), plus pm2's instance number
 * in cluster mode, where every instance listens on the same port.
 */
export function nodeIdentity (configured: string, httpPort: number, env: NodeJS.ProcessEnv = process.env, now = Date.now()): NodeIdentity {
  const instance = env.NODE_APP_INSTANCE
  const stable = configured !== '' || httpPort !== 0
  const name = configured !== ''
    ? configured
    : httpPort === 0
      ? `${hostname()}:0/${randomBytes(6).toString('base64url')}`
      : `${hostname()}:${httpPort}${instance === undefined || instance === '' ? '' : `/${instance}`}`
  return { name, id: nodeIdOf(name), epoch: now.toString(36).padStart(EPOCH_WIDTH, '0'), stable }
}
