export { OverloadedError } from '@aistack/semantic-anycast'

/** A capability definition that cannot be used; `field` names it, e.g. `capabilities[2].handler.command` */
export class CapabilitySpecError extends Error {
  static override name = 'CapabilitySpecError'
  override name = 'CapabilitySpecError'
  readonly field: string
  constructor (field: string, message: string) {
    super(`${field} ${message}`)
    this.field = field
  }
}

function named (name: string): new (message?: string) => Error {
  return class extends Error {
    static override name = name
    override name = name
  }
}

/** No local capability of that name */
export class UnknownCapabilityError extends named('UnknownCapabilityError') {}
/** A capability of that name exists already */
export class DuplicateCapabilityError extends named('DuplicateCapabilityError') {}
/** The handler did not finish within its timeout */
export class HandlerTimeoutError extends named('HandlerTimeoutError') {}
/** The request input is larger than the handler accepts */
export class InputTooLargeError extends named('InputTooLargeError') {}
/** The handler produced more output than allowed */
export class OutputTooLargeError extends named('OutputTooLargeError') {}
/** The handler failed (exit status, HTTP status, bad answer) */
export class HandlerError extends named('HandlerError') {}
/** A bad input for a handler (e.g. chunk without text) */
export class HandlerInputError extends named('HandlerInputError') {}
