import assert from 'node:assert/strict'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { didFromPublicKey, didFromPeerId, publicKeyFromDid, peerIdFromDid, didDocument, isDid } from '../src/index.js'

// a published did:key example (the W3C CCG did:key method test data)
const KNOWN_DID = 'did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th'
const KNOWN_KEY_BASE58 = '8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K'
const KNOWN_X25519 = 'z6LShpNhGwSupbB7zjuivH156vhLJBDDzmQtA4BY9S94pe1K'

describe('did:key', () => {
  it('matches a published did:key example, including its X25519 key agreement key', () => {
    const raw = base58btc.baseDecode(KNOWN_KEY_BASE58)
    assert.equal(didFromPublicKey(raw), KNOWN_DID)
    assert.deepEqual(Buffer.from(publicKeyFromDid(KNOWN_DID).raw), Buffer.from(raw))
    const doc = didDocument(KNOWN_DID)
    assert.equal(doc.keyAgreement[0], `${KNOWN_DID}#${KNOWN_X25519}`)
  })

  it('round-trips public key ⇄ DID ⇄ peer ID', async () => {
    const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
    const peerId = peerIdFromPrivateKey(key)
    const did = didFromPublicKey(key.publicKey)
    assert.match(did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
    assert.equal(didFromPeerId(peerId), did)
    assert.equal(publicKeyFromDid(did).equals(key.publicKey), true)
    assert.equal(peerIdFromDid(did).equals(peerId), true)
    assert.equal(isDid(did), true)
  })

  it('builds a DID document', async () => {
    const key = await generateKeyPair('Ed25519')
    const did = didFromPublicKey(key.publicKey)
    const doc = didDocument(did)
    const value = did.slice('did:key:'.length)
    assert.equal(doc.id, did)
    assert.equal(doc['@context'][0], 'https://www.w3.org/ns/did/v1')
    assert.equal(doc.verificationMethod[0].id, `${did}#${value}`)
    assert.equal(doc.verificationMethod[0].type, 'Ed25519VerificationKey2020')
    assert.equal(doc.verificationMethod[0].publicKeyMultibase, value)
    assert.equal(doc.verificationMethod[0].controller, did)
    assert.deepEqual(doc.authentication, [`${did}#${value}`])
    assert.deepEqual(doc.assertionMethod, doc.authentication)
    assert.match(doc.keyAgreement[0], /#z6LS/)
    // a DID URL with a fragment resolves to the same document
    assert.deepEqual(didDocument(`${did}#${value}`), doc)
  })

  it('refuses bad DIDs with named errors', async () => {
    const cases: Array<[unknown, string]> = [
      ['', 'InvalidDidError'],
      ['did', 'InvalidDidError'],
      ['key:z6Mk', 'InvalidDidError'],
      ['did:key:', 'InvalidDidError'],
      ['did:key:6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th', 'InvalidDidError'], // no multibase prefix
      ['did:key:z0OIl', 'InvalidDidError'], // not base58
      ['did:key:zTjsVPtY', 'InvalidDidError'], // too short for ed25519
      ['did:key:' + base58btc.encode(Uint8Array.from([0xed, 0x01, ...new Uint8Array(33).fill(1)])), 'InvalidDidError'], // 33-byte key
      ['did:key:' + base58btc.encode(Uint8Array.from([0xed, 0x01, ...new Uint8Array(31).fill(1)])), 'InvalidDidError'], // 31-byte key
      ['did:key:z6MkA9MEcFWsoUVqj2zX6LACFaikLQ28i9WAsJnURDS3HLGKSkUbwUbiLH22ohgZ2BwgpQ6qC3VBTNV3pLhYDTVgR', 'UnsupportedDidError'], // another multicodec
      ['did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', 'UnsupportedDidError'], // secp256k1
      ['did:web:example.com', 'UnsupportedDidError'],
      ['did:Bad Method:x', 'InvalidDidError'],
      [42, 'InvalidDidError'],
      ['did:key:z' + 'a'.repeat(300), 'InvalidDidError']
    ]
    for (const [did, name] of cases) {
      assert.throws(() => publicKeyFromDid(did as string), { name }, String(did))
      assert.equal(isDid(did as string), false)
    }
    assert.throws(() => didFromPublicKey(new Uint8Array(31)), { name: 'UnsupportedDidError' })
    const rsa = await generateKeyPair('secp256k1')
    assert.throws(() => didFromPublicKey(rsa.publicKey), { name: 'UnsupportedDidError' })
    assert.throws(() => didFromPeerId(peerIdFromPrivateKey(rsa)), { name: 'UnsupportedDidError' })
  })
})
