/** A bad command-line flag or value: the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  static override name = 'UsageError'
  override name = 'UsageError'
}

/** A config file or value that cannot be used; the message names the file and the field. */
export class ConfigError extends Error {
  static override name = 'ConfigError'
  override name = 'ConfigError'
}

/** An identity key file that cannot be read or parsed; the message names the file. */
export class IdentityError extends Error {
  static override name = 'IdentityError'
  override name = 'IdentityError'
}

/** The home directory cannot be used (a file is in the way, no permission); the message names the path. */
export class HomeError extends Error {
  static override name = 'HomeError'
  override name = 'HomeError'
}

/**
 * The node could not start for a reason outside the command line's syntax: a port in use, an
 * address this host does not have, a datastore in use. The CLI prints the message and exits 1.
 */
export class StartError extends Error {
  static override name = 'StartError'
  override name = 'StartError'
}

/** A node already runs on this home directory. */
export class AlreadyRunningError extends Error {
  static override name = 'AlreadyRunningError'
  override name = 'AlreadyRunningError'
}

/** No node runs on this home directory (no run.json, or its process is gone). */
export class NotRunningError extends Error {
  static override name = 'NotRunningError'
  override name = 'NotRunningError'
}

/** An HTTP API call failed; carries the status and the API's error code. */
export class ApiError extends Error {
  static override name = 'ApiError'
  override name = 'ApiError'
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}
