/** a handshake message that is truncated, oversize or malformed */
export class HandshakeMessageError extends Error {
  static override name = 'HandshakeMessageError'
  constructor (message = 'Invalid handshake message') {
    super(message)
    this.name = 'HandshakeMessageError'
  }
}

/** a handshake message whose authenticated encryption does not verify */
export class HandshakeDecryptError extends Error {
  static override name = 'HandshakeDecryptError'
  constructor (message = 'Handshake message failed to decrypt') {
    super(message)
    this.name = 'HandshakeDecryptError'
  }
}

/** an ML-KEM key or ciphertext of the wrong length, or a KEM operation that failed */
export class KemError extends Error {
  static override name = 'KemError'
  constructor (message = 'ML-KEM operation failed') {
    super(message)
    this.name = 'KemError'
  }
}

/** the remote identity signature over its static Noise key does not verify */
export class IdentitySignatureError extends Error {
  static override name = 'IdentitySignatureError'
  constructor (message = 'Invalid identity signature') {
    super(message)
    this.name = 'IdentitySignatureError'
  }
}

/** the remote proved an identity other than the one we dialled */
export class UnexpectedPeerIdError extends Error {
  static override name = 'UnexpectedPeerIdError'
  constructor (message = 'Remote peer ID does not match the expected one') {
    super(message)
    this.name = 'UnexpectedPeerIdError'
  }
}

/** the connection closed (the peer hung up or reset) before the secured connection was handed on */
export class HandshakeClosedError extends Error {
  static override name = 'HandshakeClosedError'
  constructor (message = 'The connection closed during the handshake') {
    super(message)
    this.name = 'HandshakeClosedError'
  }
}

/** a bad value for the PQ mode (`preferred`, `required`, `off`) */
export class InvalidPqModeError extends Error {
  static override name = 'InvalidPqModeError'
  constructor (message = 'Invalid PQ mode') {
    super(message)
    this.name = 'InvalidPqModeError'
  }
}

/** a connection that negotiated classical Noise with a peer known to speak the hybrid */
export class DowngradeError extends Error {
  static override name = 'DowngradeError'
  constructor (message = 'Peer completed the hybrid handshake before; refusing /noise') {
    super(message)
    this.name = 'DowngradeError'
  }
}

/** a DID string that cannot be parsed */
export class InvalidDidError extends Error {
  static override name = 'InvalidDidError'
  constructor (message = 'Invalid DID') {
    super(message)
    this.name = 'InvalidDidError'
  }
}

/** a well-formed DID of a method or key type this package does not support */
export class UnsupportedDidError extends Error {
  static override name = 'UnsupportedDidError'
  constructor (message = 'Unsupported DID') {
    super(message)
    this.name = 'UnsupportedDidError'
  }
}

/** bytes that are not a signed envelope */
export class InvalidEnvelopeError extends Error {
  static override name = 'InvalidEnvelopeError'
  constructor (message = 'Invalid envelope') {
    super(message)
    this.name = 'InvalidEnvelopeError'
  }
}

/** an envelope whose signature does not verify for the expected domain */
export class EnvelopeSignatureError extends Error {
  static override name = 'EnvelopeSignatureError'
  constructor (message = 'Envelope signature does not verify') {
    super(message)
    this.name = 'EnvelopeSignatureError'
  }
}

/** an envelope sealed for another record type */
export class EnvelopeDomainError extends Error {
  static override name = 'EnvelopeDomainError'
  constructor (message = 'Envelope is for another record type') {
    super(message)
    this.name = 'EnvelopeDomainError'
  }
}
