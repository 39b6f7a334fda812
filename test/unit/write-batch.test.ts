// net/write-batch.ts: writes made in one event-loop turn reach the stream as one write.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { batchWrites, flushNow } from '../../net/write-batch.js'

/** A stream that records each underlying write and completes it at once. */
function recorder (highWaterMark = 16_384): { stream: Writable, writes: Buffer[] } {
  const writes: Buffer[] = []
  const stream = new Writable({
    highWaterMark,
    write (chunk: Buffer, _enc, cb) { writes.push(Buffer.from(chunk)); cb() },
    writev (chunks, cb) { writes.push(Buffer.concat(chunks.map(c => c.chunk as Buffer))); cb() }
  })
  return { stream, writes }
}

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('batchWrites', () => {
  it('sends everything written in one turn as one write, in order', async () => {
    const { stream, writes } = recorder()
    batchWrites(stream)
    stream.write(Buffer.from('ab'))
    stream.write('cd')
    stream.write(new Uint8Array([0x65, 0x66]))
    expect(writes).toEqual([])
    await turn()
    expect(writes.map(String)).toEqual(['abcdef'])
    stream.write('gh')
    await turn()
    expect(writes.map(String)).toEqual(['abcdef', 'gh'])
  })

  it('calls each write callback once the batch is written', async () => {
    const { stream, writes } = recorder()
    batchWrites(stream)
    const done: string[] = []
    stream.write('a', () => done.push('a'))
    stream.write('b', 'utf8', () => done.push('b'))
    expect(done).toEqual([])
    await new Promise(resolve => stream.write('c', resolve))
    expect(done).toEqual(['a', 'b'])
    expect(writes.map(String)).toEqual(['abc'])
  })

  it('writes what was gathered before end()', async () => {
    const { stream, writes } = recorder()
    batchWrites(stream)
    stream.write('last ')
    stream.end('words')
    await new Promise(resolve => stream.on('finish', resolve))
    expect(Buffer.concat(writes).toString()).toBe('last words')
  })

  it('reports backpressure, and emits drain once the batch is out', async () => {
    const { stream, writes } = recorder(8)
    batchWrites(stream)
    expect(stream.write('1234')).toBe(true)
    expect(stream.write('5678')).toBe(false)
    await new Promise(resolve => stream.once('drain', resolve))
    expect(writes.map(String)).toEqual(['12345678'])
  })

  it('lets a write after destroy fail as it would unbatched', async () => {
    const { stream } = recorder()
    batchWrites(stream)
    stream.on('error', () => {})
    stream.destroy()
    const err = await new Promise<Error | null | undefined>(resolve => stream.write('x', resolve))
    expect(err).toBeInstanceOf(Error)
  })

  it('sends what was gathered at once on flushNow, and leaves other streams alone', async () => {
    const { stream, writes } = recorder()
    batchWrites(stream)
    stream.write('now')
    flushNow(stream)
    expect(writes.map(String)).toEqual(['now'])
    await turn()
    expect(writes.map(String)).toEqual(['now'])
    const plain = recorder()
    flushNow(plain.stream)
    expect(plain.writes).toEqual([])
  })
})
