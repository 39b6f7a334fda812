// Latencies recorded at full (sub-millisecond) resolution. autocannon's own
// histogram counts whole milliseconds, too coarse for a p99 of 1-3 ms.
export class LatencyRecorder {
  private values = new Float64Array(1 << 16)
  private n = 0

  get count (): number {
    return this.n
  }

  record (ms: number): void {
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.n++] = ms
  }

  /** Nearest-rank percentiles, e.g. percentiles([50, 99]). */
  percentiles (ps: number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN)
    const sorted = this.values.subarray(0, this.n).sort()
    return ps.map(p => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil(p / 100 * this.n) - 1))] as number)
  }
}
