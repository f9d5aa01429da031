import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { IdentityError } from './errors.js'
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
  // without `replace`, a key written meanwhile by another process starting on the same home wins
  try {
    await writeFile(file, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: replace ? 'w' : 'wx' })
  } catch (err: any) {
    if (err.code === 'EEXIST' && !replace) return readIdentity(file)
    throw err
  }
  await chmod(file, 0o600) // an existing file keeps its mode on overwrite
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
