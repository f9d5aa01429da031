import assert from 'node:assert/strict'

/*
 * A smaller seeded run of `npm run fuzz` (scripts/fuzz.js): 2,000 random and mutated inputs for
 * every wire decoder. Each must return or throw a clean, named error, with no input taking
 * seconds and the heap staying bounded.
 */
const TARGETS = new URL('../../../../scripts/fuzz-targets.js', import.meta.url).href

interface FuzzResult {
  name: string
  count: number
  accepted: number
  rejected: number
  failures: number
  maxHeapMiB: number
  examples: Array<{ failure: string, input: string }>
}

interface FuzzTargets {
  fuzzTargets: () => Promise<Array<{ name: string }>>
  fuzzTarget: (target: { name: string }, options: { count: number, seed: number, maxBytes?: number, slowMs?: number }) => Promise<FuzzResult>
}

describe('wire decoders under fuzzing', function () {
  this.timeout(300_000)

  it('take 2,000 seeded random and mutated inputs each and throw only clean errors', async () => {
    const { fuzzTargets, fuzzTarget } = await import(TARGETS) as FuzzTargets
    const targets = await fuzzTargets()
    assert.ok(targets.length >= 10)
    for (const [i, target] of targets.entries()) {
      // slowMs is generous: a busy machine may pause for a collection, a hang is unbounded
      const r = await fuzzTarget(target, { count: 2000, seed: 1 + i, slowMs: 5000 })
      assert.equal(r.count, 2000)
      assert.equal(r.failures, 0, `${r.name}: ${JSON.stringify(r.examples)}`)
      assert.ok(r.rejected > 0, `${r.name} rejected nothing: the inputs are not reaching it`)
      assert.ok(r.maxHeapMiB < 512, `${r.name}: heap ${r.maxHeapMiB} MiB`)
    }
  })
})
