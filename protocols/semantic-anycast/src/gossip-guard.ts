import { makeRoom } from './bounded.js'

/** Token bucket per key: `rate` tokens per second, at most `burst` saved */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  readonly rate: number
  readonly burst: number
  private readonly maxKeys: number

  /** `maxKeys`: keys tracked at most (the oldest is forgotten first), default 10,000 */
  constructor (rate: number, burst: number, maxKeys = 10_000) {
    this.rate = rate
    this.burst = burst
    this.maxKeys = maxKeys
  }

  /** Take one token for `key`; false when its bucket is empty */
  take (key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key)
    if (b == null) {
      makeRoom(this.buckets, this.maxKeys)
      b = { tokens: this.burst, at: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / 1000 * this.rate)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens--
    return true
  }
}

/** Limits on what peers may send on the capabilities topic (see docs/security.md) */
export interface GossipLimits {
  /** messages per second one neighbour may relay to this node, default 50 */
  peerRate: number
  /** burst of the above, default 500 */
  peerBurst: number
  /** records per second accepted from one owner, whoever relays them, default 2 */
  ownerRate: number
  /** burst of the above, default 300 (a node announcing all its 256 records at once) */
  ownerBurst: number
}

export const DEFAULT_GOSSIP_LIMITS: GossipLimits = { peerRate: 50, peerBurst: 500, ownerRate: 2, ownerBurst: 300 }

/** The fields of gossipsub's `TopicScoreParams` */
export interface CapsTopicScoreParams {
  topicWeight: number
  timeInMeshWeight: number
  timeInMeshQuantum: number
  timeInMeshCap: number
  firstMessageDeliveriesWeight: number
  firstMessageDeliveriesDecay: number
  firstMessageDeliveriesCap: number
  meshMessageDeliveriesWeight: number
  meshMessageDeliveriesDecay: number
  meshMessageDeliveriesCap: number
  meshMessageDeliveriesThreshold: number
  meshMessageDeliveriesWindow: number
  meshMessageDeliveriesActivation: number
  meshFailurePenaltyWeight: number
  meshFailurePenaltyDecay: number
  invalidMessageDeliveriesWeight: number
  invalidMessageDeliveriesDecay: number
}

/**
 * Gossipsub peer-score parameters for the capabilities topic (gossipsub's
 * `scoreParams.topics[topic]`): only invalid messages
 * (rejected by the topic validator: bad signature, malformed, over the
 * neighbour's rate) count, heavily, so a flooding neighbour is graylisted
 * after a few and recovers within about a minute; the topic is quiet, so
 * delivery-rate penalties are off.
 */
export function capsTopicScoreParams (): CapsTopicScoreParams {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 1,
    firstMessageDeliveriesWeight: 0,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 1,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 1,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.9
  }
}
