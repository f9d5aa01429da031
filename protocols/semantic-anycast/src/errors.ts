function named (name: string): new (message?: string) => Error {
  return class extends Error {
    static override name = name
    override name = name
  }
}

/** A record failed verification (signature, owner, limits, expiry) */
export class InvalidRecordError extends named('InvalidRecordError') {}
/** The handler is at its concurrency limit; thrown by providers, sent as OVERLOADED */
export class OverloadedError extends named('OverloadedError') {}
/** No peer offers a capability close enough to the query */
export class NoCandidatesError extends named('NoCandidatesError') {}
/** Every candidate tried failed */
export class AllCandidatesFailedError extends Error {
  static override name = 'AllCandidatesFailedError'
  override name = 'AllCandidatesFailedError'
  readonly failures: Array<{ peerId: string, capability: string, error: string }>
  constructor (message: string, failures: Array<{ peerId: string, capability: string, error: string }>) {
    super(message)
    this.failures = failures
  }
}
/** A remote peer answered with a non-OK status */
export class RemoteError extends Error {
  static override name = 'RemoteError'
  override name = 'RemoteError'
  readonly status: string
  constructor (status: string, message: string) {
    super(message)
    this.status = status
  }
}
/** A peer's answer could not be read (malformed output or tensors) */
export class BadResponseError extends named('BadResponseError') {}
/** A request or response exceeded a size limit */
export class TooLargeError extends named('TooLargeError') {}
/** A malformed request */
export class BadRequestError extends named('BadRequestError') {}
/** The service is not started */
export class NotStartedError extends named('NotStartedError') {}
/** Unknown capability on this node */
export class CapabilityNotFoundError extends named('CapabilityNotFoundError') {}
/** Too many lookups are running and waiting on this node; retry after `retryAfterSeconds` */
export class LookupQueueFullError extends Error {
  static override name = 'LookupQueueFullError'
  override name = 'LookupQueueFullError'
  readonly retryAfterSeconds: number
  constructor (message: string, retryAfterSeconds = 1) {
    super(message)
    this.retryAfterSeconds = retryAfterSeconds
  }
}
