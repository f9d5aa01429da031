function named (name: string): new (message?: string) => Error {
  return class extends Error {
    static override name = name
    override name = name
  }
}

/** A telemetry record failed verification (signature, size, limits, order) */
export class InvalidTelemetryRecordError extends named('InvalidTelemetryRecordError') {}
/** A bad value in the service's options */
export class InvalidTelemetryOptionError extends named('InvalidTelemetryOptionError') {}
/** No trace with that id is known to this node */
export class TraceNotFoundError extends named('TraceNotFoundError') {}
/** The service is not started */
export class NotStartedError extends named('NotStartedError') {}
