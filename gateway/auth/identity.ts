// The verified identity of each MQTT connection [P-2.6]: set by the auth
// stage at CONNECT, read by the stages after it (session ownership, the
// bridge, which tells responders who called). Keyed by the client object, so
// it goes when the connection does.
import type { CallerIdentity } from '../../core/envelope.js'

const identities = new WeakMap<object, CallerIdentity>()

export function setIdentity (client: object, identity: CallerIdentity): void {
  identities.set(client, identity)
}

/** The connection's verified caller; undefined without auth. */
export function identityOf (client: object): CallerIdentity | undefined {
  return identities.get(client)
}
