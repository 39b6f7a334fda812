// A node's name, id and boot epoch (gateway/cluster/identity.ts, [P-5.1]).
import { hostname } from 'node:os'
import { describe, expect, it } from 'vitest'
import { nodeIdOf, nodeIdentity } from '../../gateway/cluster/identity.js'
import { isNodeId } from '../../core/cluster-view.js'

describe('node identity', () => {
  it('is the configured nodeId, the same on every start, with a new epoch each time', () => {
    const first = nodeIdentity('gw-eu-1', 8080, {}, 1_796_000_000_000)
    const again = nodeIdentity('gw-eu-1', 8080, {}, 1_796_000_000_001)
    expect(first.name).toBe('gw-eu-1')
    expect(again.id).toBe(first.id)
    expect(again.epoch).not.toBe(first.epoch)
    expect(first.stable).toBe(true)
    expect(isNodeId(first.id)).toBe(true)
  })

  it('defaults to host and HTTP port, plus the pm2 instance whose processes share that port', () => {
    expect(nodeIdentity('', 8081, {}).name).toBe(`${hostname()}:8081`)
    const i0 = nodeIdentity('', 8081, { NODE_APP_INSTANCE: '0' })
    const i1 = nodeIdentity('', 8081, { NODE_APP_INSTANCE: '1' })
    expect(i0.name).toBe(`${hostname()}:8081/0`)
    expect(i1.id).not.toBe(i0.id)
    expect(nodeIdentity('', 8082, {}).id).not.toBe(nodeIdentity('', 8081, {}).id)
  })

  it('makes a name up for port 0 without nodeId, and says it is not stable', () => {
    const a = nodeIdentity('', 0, {})
    const b = nodeIdentity('', 0, {})
    expect(a.stable).toBe(false)
    expect(a.id).not.toBe(b.id)
  })

  it('has an epoch of fixed width that sorts by start time, so a prefix never runs into the random part', () => {
    const epochs = [1, 1_796_000_000_000, 4_000_000_000_000].map(t => nodeIdentity('n', 1, {}, t).epoch)
    for (const e of epochs) expect(e).toMatch(/^[0-9a-z]{9}$/)
    expect([...epochs].sort()).toEqual(epochs)
  })

  it('derives 8 base64url characters from the name', () => {
    expect(nodeIdOf('x')).toMatch(/^[A-Za-z0-9_-]{8}$/)
    expect(nodeIdOf('x')).toBe(nodeIdOf('x'))
    expect(nodeIdOf('x')).not.toBe(nodeIdOf('y'))
  })
})
