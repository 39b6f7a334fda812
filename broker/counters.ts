// The broker's counters, in one object that /stats, metrics and $SYS read.
// Plain numbers, bumped on the hot path without allocation.

/** What the MQTT limits refused or dropped, by reason (README "Limits"); /stats shows it as `limits`. */
export interface LimitCounters {
  /** Connections closed because a packet announced more than maxPacketSize bytes. */
  oversizePackets: number
  /** Connections closed by the packet guard: a Remaining Length past 4 bytes, a SUBSCRIBE/UNSUBSCRIBE without filters. */
  malformedPackets: number
  /** New connections that waited for the per-address connection rate before their CONNECT was read (or their WebSocket upgrade answered). */
  connectionsDelayed: number
  /** New connections refused because they would have waited longer than the connection rate's hard bound (TCP closed, WebSocket 429). */
  connectionsRefused: number
  /** PUBLISH packets that waited for the per-client publish rate (none is dropped: the client's socket is read more slowly). */
  publishesDelayed: number
  /** Subscriptions refused (SUBACK 0x80) by maxSubscriptions. */
  subscriptionsRefused: number
  /** Clients disconnected for holding more than maxOutboundBytes unsent. */
  slowConsumers: number
}

export interface Counters {
  /** PUBLISH packets received from clients, by QoS (index 0, 1, 2), before any stage consumed them. */
  received: [number, number, number]
  /** PUBLISH packets written to subscribers, by the QoS they were sent at. */
  sent: [number, number, number]
  /** Connections accepted since start, by transport. */
  connections: { tcp: number, ws: number }
  /** Conformance refusals (bad topics, packet id 0, bad CONNECT fields …), each also logged. */
  refused: number
  limits: LimitCounters
}

export function newCounters (): Counters {
  return {
    received: [0, 0, 0],
    sent: [0, 0, 0],
    connections: { tcp: 0, ws: 0 },
    refused: 0,
    limits: { oversizePackets: 0, malformedPackets: 0, connectionsDelayed: 0, connectionsRefused: 0, publishesDelayed: 0, subscriptionsRefused: 0, slowConsumers: 0 }
  }
}
