/**
 * The one place that signs and opens capability records: the signed
 * envelopes of `@aistack/handshake` (a libp2p signed envelope, Ed25519 over
 * the domain string `<network>/1/capability-record`, payload type the same
 * string), shared with every other record type of the network.
 */
import { domainsFor, openRecord, sealRecord } from '@aistack/handshake'
import type { OpenedRecord } from '@aistack/handshake'

export { sealRecord, openRecord, domainsFor }
export type { OpenedRecord }

/** The signature domain of capability records on `network`; throws RangeError for an invalid network id */
export function capabilityDomain (network: string): string {
  return domainsFor(network).capability
}
