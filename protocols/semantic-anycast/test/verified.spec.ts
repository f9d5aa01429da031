import assert from 'node:assert/strict'
import { HashEmbedder } from '@aistack/embeddings'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signCapabilityRecord } from '../src/index.js'
import { VerifiedRecords } from '../src/verified.js'

describe('records verified lately', () => {
  const embedder = new HashEmbedder()
  const network = 'aistack'

  async function signed (name: string, expiresAt: number): Promise<Uint8Array> {
    const key = await generateKeyPair('Ed25519')
    const [vector] = await embedder.embed([name])
    return signCapabilityRecord(key, { name, description: `Do ${name}`, tags: [], examples: [] }, {
      network, owner: peerIdFromPrivateKey(key).toString(), model: embedder.id, vector, seq: 1n, expiresAt
    })
  }

  it('verifies the same bytes once while they have not expired, and never takes other bytes for them', async () => {
    const memo = new VerifiedRecords({ network, model: embedder.id, dim: embedder.dim })
    const now = Date.now()
    const bytes = await signed('weather', now + 60_000)
    const first = await memo.verify(bytes, now)
    assert.equal(memo.hits, 0)
    assert.equal(await memo.verify(Uint8Array.from(bytes), now), first, 'equal bytes: the record verified before')
    assert.equal(memo.hits, 1)
    const tampered = Uint8Array.from(bytes)
    tampered[tampered.length - 1] ^= 1
    await assert.rejects(memo.verify(tampered, now), { name: 'InvalidRecordError' })
    await assert.rejects(memo.verify(bytes, now + 61_000), { name: 'InvalidRecordError' }, 'an expired record is checked again, and refused')
  })

  it('is bounded, the oldest forgotten first', async () => {
    const memo = new VerifiedRecords({ network, model: embedder.id, dim: embedder.dim }, 2)
    const now = Date.now()
    const [a, b, c] = await Promise.all(['alpha', 'beta', 'gamma'].map(async n => signed(n, now + 60_000)))
    for (const bytes of [a, b, c]) await memo.verify(bytes, now)
    await memo.verify(c, now)
    await memo.verify(b, now)
    assert.equal(memo.hits, 2)
    await memo.verify(a, now)
    assert.equal(memo.hits, 2, 'the first was forgotten')
  })
})
