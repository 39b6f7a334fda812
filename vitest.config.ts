import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real servers and child processes; running files in
    // parallel on a 2-core CI box only makes their timing noisier.
    fileParallelism: false,
    reporters: ['default']
  }
})
