import { createHash } from 'node:crypto'
import { setNewest } from './bounded.js'
import { verifyCapabilityRecord } from './record.js'
import type { CapabilityRecord, VerifyOptions } from './record.js'

/**
 * Capability records verified lately, by the SHA-256 of their signed bytes:
 * the same envelope arriving again (gossip relays and re-announcements,
 * anti-entropy answers, fetches) is not verified again while it has not
 * expired. Equal bytes carry the same signature, so a hit is as good as a
 * check. Bounded: at most `max` records (default 1,024: about 4 MiB with
 * their vectors at today's record sizes, at most ~20 MiB with every record at
 * its 16 KiB limit), the oldest forgotten first.
 */
export class VerifiedRecords {
  private readonly max: number
  private readonly records = new Map<string, CapabilityRecord>()
  private readonly opts: VerifyOptions
  /** verifications saved by a hit, for tests and metrics */
  hits = 0

  /** `opts`: how every record through this memo is verified (network, model, dimension) */
  constructor (opts: VerifyOptions, max = 1024) {
    this.opts = opts
    this.max = Math.max(1, max)
  }

  /**
   * The record in `bytes`, verified now or when the same bytes were last
   * seen. Throws InvalidRecordError like `verifyCapabilityRecord`.
   */
  async verify (bytes: Uint8Array, now = Date.now()): Promise<CapabilityRecord> {
    const key = createHash('sha256').update(bytes).digest('base64')
    const held = this.records.get(key)
    if (held != null && held.expiresAt > now) {
      this.hits++
      return held
    }
    const record = await verifyCapabilityRecord(bytes, { ...this.opts, now })
    setNewest(this.records, key, record, this.max)
    return record
  }
}
