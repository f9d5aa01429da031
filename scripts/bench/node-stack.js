// The libp2p stack of an aistack node, for the sembatch benchmarks: TCP, the post-quantum hybrid
// handshake (Noise + ML-KEM-768) and the node's yamux (window updates at half the window), as
// packages/node/src/lane-stack.ts builds them for the node's bulk lane; `laneInit` gives the same
// stack to the lane's worker. Both ends of a benchmark use it, so what is measured is what two
// nodes speak, not stock Noise and yamux. `nodeRuntime()` does to the process what `aistack start`
// does to a node's (packages/node/src/runtime.ts): run the benchmark's npm script, which passes
// --single-threaded-gc and --initial-old-space-size=128 to Node, as `aistack start` does, and its
// child processes get the same flags.
import { availableParallelism } from 'node:os'

export const NODE_STACK = new URL('../../packages/node/dist/src/lane-stack.js', import.meta.url).href
const stackInit = { pq: 'required' }
const { default: laneStack } = await import(NODE_STACK)
const { lowerV8BackgroundThreads, runtimeInfo } = await import(new URL('../../packages/node/dist/src/runtime.js', import.meta.url).href)

/** transports, connectionEncrypters and streamMuxers of an aistack node */
export function nodeStack () {
  return laneStack(stackInit)
}

/** sembatch's `bulkLane` init for a lane on the node's stack */
export const laneInit = { stack: NODE_STACK, stackInit }

/**
 * Lowers V8's background threads as a node does (with --single-threaded-gc, on Linux); how this
 * process collects garbage and schedules them, for the reports
 */
export function nodeRuntime () {
  lowerV8BackgroundThreads()
  return { ...runtimeInfo(), cores: availableParallelism() }
}
