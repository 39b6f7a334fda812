// A gateway node's id, kept in its LevelDB state (dataDir) so that a restarted
// process is the same node: it consumes the same durable reply queue
// (rtw.reply.<node>), where replies to requests it accepted before a crash wait.
// Only for LevelDB: in a Redis cluster the node id is gateway/cluster/identity.ts's.
import { randomBytes } from 'node:crypto'
import type { StoreBackend } from '../../net/store/store.js'

const CENTURY_MS = 100 * 365 * 86_400_000

export async function durableNodeId (backend: StoreBackend): Promise<string> {
  const kv = await backend.open('node', { ttlMs: CENTURY_MS, maxEntries: 1, maxBytes: 1024, whenFull: 'refuse' })
  const known = await kv.get('id')
  if (known !== undefined) return known
  const id = randomBytes(9).toString('base64url')
  await kv.put('id', id)
  return id
}
