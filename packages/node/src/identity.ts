import { readFile, stat } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { IdentityError } from './errors.js'
import { writeWhole } from './write-whole.js'
import type { PrivateKey } from '@libp2p/interface'

export const IDENTITY_FILE = 'identity.key'

/** Reads the node's Ed25519 key (libp2p protobuf encoding); errors name the file. */
export async function readIdentity (file: string): Promise<PrivateKey> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err: any) {
    throw new IdentityError(`${file}: cannot read the identity key (${String(err.message ?? err)})`)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new IdentityError(`${file}: not a valid identity key (${String(err.message ?? err)}); move it away and run \`aistack init\` for a new identity`)
  }
  if (key.type !== 'Ed25519') throw new IdentityError(`${file}: the identity key is ${key.type}, aistack needs Ed25519`)
  return key
}

/** Creates a new Ed25519 identity in `file` with mode 0600; `replace: false` keeps an existing one. */
export async function writeIdentity (file: string, key?: PrivateKey, { replace = true } = {}): Promise<PrivateKey> {
  const privateKey = key ?? await generateKeyPair('Ed25519')
  // written whole and linked into place: a process starting on the same home at the same moment
  // reads no key or a complete one; without `replace`, a key written meanwhile by the other wins
  const written = await writeWhole(file, privateKeyToProtobuf(privateKey), { mode: 0o600, replace })
  if (!written) return readIdentity(file)
  return privateKey
}

export async function exists (file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch (err: any) {
    if (err.code === 'ENOENT') return false
    throw err
  }
}
