import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { WIRE_VERSION } from './constants.js'

const RAW_CODEC = 0x55
const SHA256_CODE = 0x12

export interface LshParams {
  /** number of hash tables (L) */
  tables: number
  /** bits per table (k) */
  bits: number
}

export interface Bucket {
  table: number
  /** k characters '0'/'1', the SimHash of the vector in that table */
  bits: string
}

/** Deterministic xoshiro128** generator seeded from 16 bytes */
class Rng {
  private readonly s: Uint32Array
  constructor (seed: Uint8Array) {
    this.s = new Uint32Array(4)
    const view = new DataView(seed.buffer, seed.byteOffset, 16)
    for (let i = 0; i < 4; i++) this.s[i] = view.getUint32(i * 4, true)
    if (this.s.every(x => x === 0)) this.s[0] = 1
  }

  next (): number {
    const s = this.s
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0
    const t = s[1] << 9
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 11)
    return result / 4294967296
  }

  gaussian (): number {
    let u = 0
    while (u === 0) u = this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
}

function rotl (x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** The DHT key of one bucket: CIDv1 raw of sha256("<network>/1/cap-lsh/<model>/<table>/<bits>") */
export function bucketKey (network: string, model: string, bucket: Bucket): CID {
  const text = `${network}/${WIRE_VERSION}/cap-lsh/${model}/${bucket.table}/${bucket.bits}`
  const hash = createHash('sha256').update(text).digest()
  return CID.createV1(RAW_CODEC, Digest.create(SHA256_CODE, new Uint8Array(hash.buffer, hash.byteOffset, hash.byteLength)))
}

/**
 * SimHash over random hyperplanes drawn from a fixed seed per network, model
 * and dimension: every node computes the same buckets for the same vector.
 */
export class SimHashLsh {
  readonly network: string
  readonly model: string
  readonly dim: number
  readonly tables: number
  readonly bits: number
  private readonly planes: Float32Array

  constructor (network: string, model: string, dim: number, params: LshParams) {
    if (!Number.isInteger(params.tables) || params.tables < 1 || params.tables > 64) throw new RangeError('lsh.tables must be an integer in 1..64')
    if (!Number.isInteger(params.bits) || params.bits < 1 || params.bits > 32) throw new RangeError('lsh.bits must be an integer in 1..32')
    this.network = network
    this.model = model
    this.dim = dim
    this.tables = params.tables
    this.bits = params.bits
    // the plane of (table, bit) depends only on network, model, dim, table
    // and bit, so configurations with fewer tables or bits are prefixes of larger ones
    const seed = createHash('sha256').update(`${network}/${WIRE_VERSION}/cap-lsh-seed/${model}/${dim}`).digest()
    this.planes = new Float32Array(this.tables * this.bits * dim)
    for (let t = 0; t < this.tables; t++) {
      for (let b = 0; b < this.bits; b++) {
        const rng = new Rng(new Uint8Array(createHash('sha256').update(seed).update(`/${t}/${b}`).digest()).subarray(0, 16))
        const off = (t * this.bits + b) * dim
        for (let i = 0; i < dim; i++) this.planes[off + i] = rng.gaussian()
      }
    }
  }

  /** Signed distances of the vector to every hyperplane, table-major */
  project (vector: ArrayLike<number>): Float32Array {
    if (vector.length !== this.dim) throw new RangeError(`vector has ${vector.length} dimensions, expected ${this.dim}`)
    const out = new Float32Array(this.tables * this.bits)
    for (let p = 0; p < out.length; p++) {
      let s = 0
      const off = p * this.dim
      for (let i = 0; i < this.dim; i++) s += this.planes[off + i] * vector[i]
      out[p] = s
    }
    return out
  }

  /** The bucket of the vector in each table */
  buckets (vector: ArrayLike<number>): Bucket[] {
    const proj = this.project(vector)
    const out: Bucket[] = []
    for (let t = 0; t < this.tables; t++) {
      let bits = ''
      for (let b = 0; b < this.bits; b++) bits += proj[t * this.bits + b] >= 0 ? '1' : '0'
      out.push({ table: t, bits })
    }
    return out
  }

  /**
   * Multi-probe: per table the vector's own bucket, then the neighbours most
   * likely to hold close vectors (flip the bits whose hyperplane margin is
   * smallest; single flips, then pairs), `perTable` buckets in all.
   */
  probes (vector: ArrayLike<number>, perTable: number): Bucket[] {
    const proj = this.project(vector)
    const out: Bucket[] = []
    for (let t = 0; t < this.tables; t++) {
      const base: string[] = []
      const margins: Array<{ b: number, m: number }> = []
      for (let b = 0; b < this.bits; b++) {
        const x = proj[t * this.bits + b]
        base.push(x >= 0 ? '1' : '0')
        margins.push({ b, m: Math.abs(x) })
      }
      margins.sort((p, q) => p.m - q.m)
      const flips: Array<{ set: number[], cost: number }> = [{ set: [], cost: 0 }]
      const top = margins.slice(0, Math.min(margins.length, 8))
      for (let i = 0; i < top.length; i++) {
        flips.push({ set: [top[i].b], cost: top[i].m })
        for (let j = i + 1; j < top.length; j++) flips.push({ set: [top[i].b, top[j].b], cost: top[i].m + top[j].m })
      }
      flips.sort((p, q) => p.cost - q.cost)
      for (const f of flips.slice(0, Math.max(1, perTable))) {
        const bits = base.slice()
        for (const b of f.set) bits[b] = bits[b] === '1' ? '0' : '1'
        out.push({ table: t, bits: bits.join('') })
      }
    }
    return out
  }

  key (bucket: Bucket): CID {
    return bucketKey(this.network, this.model, bucket)
  }
}
