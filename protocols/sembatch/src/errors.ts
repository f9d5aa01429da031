/** A frame could not be decoded, or breaks the rules of its direction */
export class MalformedFrameError extends Error {
  static override name = 'MalformedFrameError'
  override name = 'MalformedFrameError'
}

/** A frame, batch or payload is over a limit (see `LIMITS`) */
export class OversizeError extends Error {
  static override name = 'OversizeError'
  override name = 'OversizeError'
}

/** A request names a context key with no handler on the receiver */
export class UnknownContextKeyError extends Error {
  static override name = 'UnknownContextKeyError'
  override name = 'UnknownContextKeyError'
}

/** The opener sent more requests (or bytes) than it was granted */
export class CreditViolationError extends Error {
  static override name = 'CreditViolationError'
  override name = 'CreditViolationError'
}

/** The stream carrying a request was reset or closed before its answer came */
export class StreamResetError extends Error {
  static override name = 'StreamResetError'
  override name = 'StreamResetError'
}

/** The receiver's handler failed; the message is the remote's */
export class RemoteError extends Error {
  static override name = 'RemoteError'
  override name = 'RemoteError'
}

/** Too many messages are queued for a peer already */
export class QueueFullError extends Error {
  static override name = 'QueueFullError'
  override name = 'QueueFullError'
}

/** No answer within the request's time limit */
export class RequestTimeoutError extends Error {
  static override name = 'RequestTimeoutError'
  override name = 'RequestTimeoutError'
}

/** The service is not started */
export class NotStartedError extends Error {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
}

/** A tensor could not be encoded or decoded */
export class TensorError extends Error {
  static override name = 'TensorError'
  override name = 'TensorError'
}

/** The bulk lane could not start or reach the peer (the bulk class then stays on the main stream) */
export class LaneUnavailableError extends Error {
  static override name = 'LaneUnavailableError'
  override name = 'LaneUnavailableError'
}
