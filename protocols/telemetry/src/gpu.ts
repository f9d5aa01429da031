/**
 * GPU sampling through `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`
 * (NVIDIA's System Management Interface; fields as in `nvidia-smi --help-query-gpu`).
 * No GPU fields are reported where `nvidia-smi` is not on PATH or fails.
 */
import { execFile } from 'node:child_process'
import { accessSync, constants as fsConstants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { LIMITS } from './constants.js'
import type { GpuTelemetry } from './types.js'

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits']

/** The path of an executable `name` on `PATH`, or undefined */
export function onPath (name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    const file = join(dir, name)
    try {
      accessSync(file, fsConstants.X_OK)
      return file
    } catch {}
  }
  return undefined
}

/** Parses nvidia-smi's CSV lines (`index, name, util, mem used, mem total`); lines that do not parse are skipped */
export function parseNvidiaSmi (text: string): GpuTelemetry[] {
  const gpus: GpuTelemetry[] = []
  for (const line of text.split('\n')) {
    const cells = line.split(',').map(c => c.trim())
    if (cells.length < 5) continue
    const [index, utilization, used, total] = [cells[0], cells[2], cells[3], cells[4]].map(Number)
    if (![index, utilization, used, total].every(Number.isFinite)) continue
    gpus.push({ index, name: cells[1].slice(0, LIMITS.maxNameLength), utilization, memoryUsedMiB: used, memoryTotalMiB: total })
    if (gpus.length >= LIMITS.maxGpus) break
  }
  return gpus
}

/** Runs nvidia-smi once (bounded time and output); undefined when it is absent or fails */
export async function queryGpus (binary: string): Promise<GpuTelemetry[] | undefined> {
  return new Promise(resolve => {
    execFile(binary, NVIDIA_SMI_ARGS, { timeout: LIMITS.gpuQueryTimeoutMs, maxBuffer: LIMITS.gpuQueryMaxBytes, windowsHide: true }, (err, stdout) => {
      if (err != null) {
        resolve(undefined)
        return
      }
      resolve(parseNvidiaSmi(String(stdout)))
    })
  })
}
