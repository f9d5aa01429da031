import { randomBytes } from 'node:crypto'
import { link, rename, unlink, writeFile } from 'node:fs/promises'

/**
 * Writes `data` to `file` so that no reader ever sees it half written: the bytes go to a file
 * beside it, which is then linked into place (`replace: false`: a file that exists already, for
 * example one another process starting on the same home wrote a moment earlier, is kept and
 * `false` returned) or renamed over it (`replace: true`). `mode` applies to a new file.
 * Returns true when this call's data is now at `file`. Throws the file system's errors.
 */
export async function writeWhole (file: string, data: string | Uint8Array, { mode, replace }: { mode: number, replace: boolean }): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    // 'wx': a fresh file, so the mode given is the mode it gets (less the umask, which only narrows)
    await writeFile(tmp, data, { mode, flag: 'wx' })
    if (replace) {
      await rename(tmp, file)
      return true
    }
    await link(tmp, file)
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST' && !replace) return false
    throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
}
