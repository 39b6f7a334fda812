// A minimal typed event emitter: on() returns the function that removes the listener.

export type Listener<A extends unknown[]> = (...args: A) => void

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners: { [K in keyof E]?: Set<Listener<E[K]>> } = {}

  on<K extends keyof E> (event: K, fn: Listener<E[K]>): () => void {
    const set = this.listeners[event] ?? (this.listeners[event] = new Set())
    set.add(fn)
    return () => { set.delete(fn) }
  }

  protected emit<K extends keyof E> (event: K, ...args: E[K]): void {
    const set = this.listeners[event]
    if (set === undefined) return
    for (const fn of [...set]) {
      try {
        fn(...args)
      } catch (err) {
        // A listener's bug must not break the connection: report it asynchronously.
        setTimeout(() => { throw err }, 0)
      }
    }
  }
}
