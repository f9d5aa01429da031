export class InvalidTaskError extends Error {
  static override name = 'InvalidTaskError'
  override name = 'InvalidTaskError'
}

export class PayloadTooLargeError extends Error {
  static override name = 'PayloadTooLargeError'
  override name = 'PayloadTooLargeError'
}

export class TaskNotFoundError extends Error {
  static override name = 'TaskNotFoundError'
  override name = 'TaskNotFoundError'
}

export class InvalidTransitionError extends Error {
  static override name = 'InvalidTransitionError'
  override name = 'InvalidTransitionError'
}

export class InvalidSignatureError extends Error {
  static override name = 'InvalidSignatureError'
  override name = 'InvalidSignatureError'
}

export class NotStartedError extends Error {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
}

export class TaskTimeoutError extends Error {
  static override name = 'TaskTimeoutError'
  override name = 'TaskTimeoutError'
}

export class OutputTooLargeError extends Error {
  static override name = 'OutputTooLargeError'
  override name = 'OutputTooLargeError'
}
