import { CAPABILITY_NAME, LIMITS, MAX_RECORD_TTL_MS } from './constants.js'
import { InvalidRecordError } from './errors.js'
import { CapabilityRecord as PbRecord } from './pb/anycast.js'
import { capabilityDomain, openRecord, sealRecord } from './record-signing.js'
import type { PrivateKey } from '@libp2p/interface'

export interface CapabilityAttributes {
  /** Price per request in an agreed unit; lower is better */
  cost?: number
  /** Requests the handler runs at once */
  maxConcurrency?: number
  region?: string
  privacy?: string
}

/** What a node says about one of its capabilities */
export interface LocalCapability {
  name: string
  description: string
  tags?: string[]
  examples?: string[]
  attributes?: CapabilityAttributes
}

/** A verified capability record, vector decoded */
export interface CapabilityRecord {
  network: string
  name: string
  description: string
  tags: string[]
  examples: string[]
  model: string
  dim: number
  /** dequantised, L2-normalised embedding */
  vector: Float32Array
  attributes: CapabilityAttributes
  owner: string
  seq: bigint
  expiresAt: number
  tombstone: boolean
  /** the signed envelope as received (forwarded as is) */
  bytes: Uint8Array
}

/** Quantise a vector to int8 with one scale: v[i] ~= q[i] * scale */
export function quantize (vector: ArrayLike<number>): { values: Int8Array, scale: number } {
  let max = 0
  for (let i = 0; i < vector.length; i++) max = Math.max(max, Math.abs(vector[i]))
  const scale = max === 0 ? 0 : max / 127
  const values = new Int8Array(vector.length)
  if (scale > 0) {
    for (let i = 0; i < vector.length; i++) values[i] = Math.max(-127, Math.min(127, Math.round(vector[i] / scale)))
  }
  return { values, scale }
}

export function dequantize (values: Int8Array, scale: number): Float32Array {
  const v = new Float32Array(values.length)
  let n = 0
  for (let i = 0; i < values.length; i++) {
    v[i] = values[i] * scale
    n += v[i] * v[i]
  }
  if (n > 0) {
    const inv = 1 / Math.sqrt(n)
    for (let i = 0; i < v.length; i++) v[i] *= inv
  }
  return v
}

/** Text of a capability that is embedded */
export function capabilityText (cap: LocalCapability): string {
  return [cap.name.replace(/[._:-]+/g, ' '), cap.description, ...(cap.tags ?? []), ...(cap.examples ?? [])].join('. ')
}

export interface CreateRecordOptions {
  network: string
  owner: string
  model: string
  vector?: ArrayLike<number>
  seq: bigint
  expiresAt: number
  tombstone?: boolean
}

/** Validate the fields of a local capability; throws naming the field (prefixed by `path`) */
export function validateCapability (cap: LocalCapability, path = 'capability'): void {
  const fail = (field: string, msg: string): never => { throw new InvalidRecordError(`${path}.${field} ${msg}`) }
  if (typeof cap.name !== 'string' || !CAPABILITY_NAME.test(cap.name)) fail('name', 'must match ' + CAPABILITY_NAME.source)
  if (typeof cap.description !== 'string' || cap.description.length === 0 || cap.description.length > LIMITS.maxDescriptionLength) fail('description', `must be a string of 1-${LIMITS.maxDescriptionLength} characters`)
  const list = (field: 'tags' | 'examples', max: number, maxLen: number): void => {
    const v = cap[field]
    if (v == null) return
    if (!Array.isArray(v) || v.length > max) fail(field, `must be an array of at most ${max} strings`)
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0 || s.length > maxLen) fail(`${field}[${i}]`, `must be a string of 1-${maxLen} characters`)
    })
  }
  list('tags', LIMITS.maxTags, LIMITS.maxTagLength)
  list('examples', LIMITS.maxExamples, LIMITS.maxExampleLength)
  const a = cap.attributes
  if (a == null) return
  if (typeof a !== 'object' || Array.isArray(a)) fail('attributes', 'must be an object')
  if (a.cost != null && (typeof a.cost !== 'number' || !Number.isFinite(a.cost) || a.cost < 0)) fail('attributes.cost', 'must be a finite number >= 0')
  if (a.maxConcurrency != null && (!Number.isInteger(a.maxConcurrency) || a.maxConcurrency < 1 || a.maxConcurrency > 1_000_000)) fail('attributes.maxConcurrency', 'must be a positive integer')
  for (const f of ['region', 'privacy'] as const) {
    if (a[f] != null && (typeof a[f] !== 'string' || a[f].length > LIMITS.maxAttributeLength)) fail(`attributes.${f}`, `must be a string of at most ${LIMITS.maxAttributeLength} characters`)
  }
}

/** Build and sign a record; returns the signed envelope bytes */
export async function signCapabilityRecord (privateKey: PrivateKey, cap: LocalCapability, opts: CreateRecordOptions): Promise<Uint8Array> {
  const { values, scale } = opts.tombstone === true || opts.vector == null ? { values: new Int8Array(0), scale: 0 } : quantize(opts.vector)
  const pb: PbRecord = {
    network: opts.network,
    name: cap.name,
    description: opts.tombstone === true ? '' : cap.description,
    tags: opts.tombstone === true ? [] : cap.tags ?? [],
    examples: opts.tombstone === true ? [] : cap.examples ?? [],
    model: opts.model,
    dim: values.length,
    vector: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    scale,
    attributes: opts.tombstone === true ? undefined : cap.attributes,
    owner: opts.owner,
    seq: opts.seq,
    expiresAt: BigInt(opts.expiresAt),
    tombstone: opts.tombstone === true
  }
  return sealRecord(privateKey, capabilityDomain(opts.network), PbRecord.encode(pb))
}

export interface VerifyOptions {
  network: string
  /** When the record's model is this one, its dimension must be `dim` */
  model?: string
  dim?: number
  now?: number
}

/**
 * Verify a signed record: size, signature, owner is the signer, network,
 * field limits, dimension, finite values, expiry. Throws InvalidRecordError.
 */
export async function verifyCapabilityRecord (bytes: Uint8Array, opts: VerifyOptions): Promise<CapabilityRecord> {
  if (bytes.byteLength > LIMITS.maxRecordBytes) throw new InvalidRecordError(`record is ${bytes.byteLength} bytes, limit ${LIMITS.maxRecordBytes}`)
  let opened
  try {
    opened = await openRecord(bytes, capabilityDomain(opts.network), { maxSize: LIMITS.maxRecordBytes })
  } catch (err: any) {
    throw new InvalidRecordError(`bad signature: ${err.message}`)
  }
  let pb: PbRecord
  try {
    pb = PbRecord.decode(opened.payload, { limits: { tags: LIMITS.maxTags, examples: LIMITS.maxExamples } })
  } catch (err: any) {
    throw new InvalidRecordError(`malformed record: ${err.message}`)
  }
  if (pb.owner !== opened.signer.toString()) throw new InvalidRecordError(`owner ${pb.owner} is not the signer ${opened.signer.toString()}`)
  if (pb.network !== opts.network) throw new InvalidRecordError(`record is for network ${pb.network}, not ${opts.network}`)
  const now = opts.now ?? Date.now()
  const expiresAt = Number(pb.expiresAt)
  if (expiresAt <= now) throw new InvalidRecordError('record has expired')
  if (expiresAt > now + MAX_RECORD_TTL_MS + 60_000) throw new InvalidRecordError('record expiry is too far in the future')
  if (!CAPABILITY_NAME.test(pb.name)) throw new InvalidRecordError('record name is invalid')
  if (pb.model.length === 0 || pb.model.length > LIMITS.maxModelLength) throw new InvalidRecordError('record model id is invalid')
  const attributes: CapabilityAttributes = {}
  if (pb.attributes != null) {
    const a = pb.attributes
    if (a.cost != null) attributes.cost = a.cost
    if (a.maxConcurrency != null) attributes.maxConcurrency = a.maxConcurrency
    if (a.region != null) attributes.region = a.region
    if (a.privacy != null) attributes.privacy = a.privacy
  }
  let vector: Float32Array = new Float32Array(0)
  if (!pb.tombstone) {
    const cap: LocalCapability = { name: pb.name, description: pb.description, tags: pb.tags, examples: pb.examples, attributes }
    try {
      validateCapability(cap, 'record')
    } catch (err: any) {
      throw new InvalidRecordError(err.message)
    }
    if (pb.dim === 0 || pb.dim > LIMITS.maxDim || pb.vector.byteLength !== pb.dim) throw new InvalidRecordError(`record vector has ${pb.vector.byteLength} values, dim says ${pb.dim}`)
    if (opts.model === pb.model && opts.dim != null && pb.dim !== opts.dim) throw new InvalidRecordError(`record dimension ${pb.dim} does not match model ${pb.model} (${opts.dim})`)
    if (!Number.isFinite(pb.scale) || pb.scale < 0) throw new InvalidRecordError('record vector scale is not a finite number >= 0')
    vector = dequantize(new Int8Array(pb.vector.buffer, pb.vector.byteOffset, pb.vector.byteLength), pb.scale)
  }
  return {
    network: pb.network,
    name: pb.name,
    description: pb.description,
    tags: pb.tags,
    examples: pb.examples,
    model: pb.model,
    dim: pb.dim,
    vector,
    attributes,
    owner: pb.owner,
    seq: pb.seq,
    expiresAt,
    tombstone: pb.tombstone,
    bytes
  }
}
