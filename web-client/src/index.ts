// RealTime-Web browser client: REST-style requests, live subscriptions and
// publishes over one MQTT-over-WebSocket connection, or over EventSource and
// fetch when no WebSocket opens. See web-client/README.md.
export { connect, RealtimeClient } from './client.js'
export type {
  ClientEvents, ConnectOptions, ConnectionState, DisconnectInfo, Message, MessageHandler,
  PublishOptions, RecoveredInfo, SubscribeOptions, Subscription, Transport
} from './client.js'
export type { EventSourceConstructor } from './sse-transport.js'
export type { BodyInit } from './body.js'
export type { QoS } from './codec.js'
export type { WebSocketConstructor } from './connection.js'
export { CLIENT_ERRORS, GatewayError } from './errors.js'
export type { ClientErrorCode, ErrorCode, ErrorResponse, GatewayErrorCode } from './errors.js'
export type { RequestOptions, Response } from './response.js'
