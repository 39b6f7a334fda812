// Bodies and payloads: what a caller may pass, and how it travels. Valid UTF-8
// is a string, other bytes are a Uint8Array (base64 inside an MQTT envelope
// [P-2.3]), plain objects and arrays are JSON.

/** What request() and publish() accept. Objects and arrays are sent as JSON. */
export type BodyInit = string | Uint8Array | ArrayBuffer | ArrayBufferView | Record<string, unknown> | unknown[] | number | boolean | null

export interface EncodedBody {
  /** The bytes, or the text when the body was a string or JSON. */
  data: string | Uint8Array
  /** The content type the body implies when the caller names none. */
  contentType: string
}

const strict = new TextDecoder('utf-8', { fatal: true })

export function encodeBody (body: BodyInit): EncodedBody {
  if (typeof body === 'string') return { data: body, contentType: 'text/plain; charset=utf-8' }
  if (body instanceof Uint8Array) return { data: body, contentType: 'application/octet-stream' }
  if (body instanceof ArrayBuffer) return { data: new Uint8Array(body), contentType: 'application/octet-stream' }
  if (ArrayBuffer.isView(body)) return { data: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), contentType: 'application/octet-stream' }
  return { data: JSON.stringify(body), contentType: 'application/json' }
}

/** A payload as bytes, for PUBLISH. */
export function toBytes (body: BodyInit): Uint8Array {
  const { data } = encodeBody(body)
  return typeof data === 'string' ? new TextEncoder().encode(data) : data
}

/** Valid UTF-8 becomes a string, anything else stays bytes: the same rule as the gateway's [P-2.3]. */
export function decodeBytes (bytes: Uint8Array): string | Uint8Array {
  try {
    return strict.decode(bytes)
  } catch {
    return bytes
  }
}

export function toBase64 (bytes: Uint8Array): string {
  let bin = ''
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(bin)
}

export function fromBase64 (b64: string): Uint8Array {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}
