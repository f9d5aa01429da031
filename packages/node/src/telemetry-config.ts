/**
 * The `telemetry` section of config.json:
 * `{"intervalMs": 5000, "otlp": {"endpoint": "http://127.0.0.1:4318/v1/traces"}, "alerts": {...}, "enabled": true}`.
 */
import { DEFAULT_INTERVAL_MS, LIMITS } from '@aistack/telemetry'
import type { AlertThresholds } from '@aistack/telemetry'

export interface TelemetryConfig {
  /** false: no telemetry records are sent (the node still reads those of others) */
  enabled?: boolean
  /** sampling and publishing interval, ms (default 5000, 250..600000) */
  intervalMs?: number
  /** OTLP/HTTP traces endpoint of an OpenTelemetry collector */
  otlp?: { endpoint?: string }
  alerts?: AlertThresholds
}

export const DEFAULT_TELEMETRY: TelemetryConfig = { enabled: true, intervalMs: DEFAULT_INTERVAL_MS }

function fail (message: string): never {
  throw new Error(message)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

function onlyKeys (v: Record<string, unknown>, keys: string[], f: string): void {
  for (const k of Object.keys(v)) {
    if (!k.startsWith('$') && !keys.includes(k)) fail(`${f}.${k} is not a known field (${keys.join(', ')})`)
  }
}

function number (v: unknown, f: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    fail(`${f} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`)
  }
  return v
}

/** Checks a `telemetry` config value; throws an Error naming the field at fault */
export function checkTelemetryConfig (v: unknown, f: string): TelemetryConfig {
  if (!isObject(v)) fail(`${f} must be an object`)
  onlyKeys(v, ['enabled', 'intervalMs', 'otlp', 'alerts'], f)
  const out: TelemetryConfig = {}
  if (v.enabled != null) {
    if (typeof v.enabled !== 'boolean') fail(`${f}.enabled must be true or false`)
    out.enabled = v.enabled
  }
  if (v.intervalMs != null) out.intervalMs = number(v.intervalMs, `${f}.intervalMs`, LIMITS.minIntervalMs, LIMITS.maxIntervalMs, true)
  if (v.otlp != null) {
    if (!isObject(v.otlp)) fail(`${f}.otlp must be an object`)
    onlyKeys(v.otlp, ['endpoint'], `${f}.otlp`)
    if (v.otlp.endpoint != null) {
      let url: URL | undefined
      try { url = new URL(String(v.otlp.endpoint)) } catch {}
      if (typeof v.otlp.endpoint !== 'string' || url == null || !['http:', 'https:'].includes(url.protocol)) {
        fail(`${f}.otlp.endpoint must be an http(s) URL such as http://127.0.0.1:4318/v1/traces`)
      }
      out.otlp = { endpoint: v.otlp.endpoint }
    }
  }
  if (v.alerts != null) {
    const a = v.alerts
    if (!isObject(a)) fail(`${f}.alerts must be an object`)
    onlyKeys(a, ['p95Ms', 'errorRate', 'minRequests', 'gpuIdlePercent', 'gpuOverloadedPercent', 'minRatePerMin'], `${f}.alerts`)
    const alerts: AlertThresholds = {}
    if (a.p95Ms != null) alerts.p95Ms = number(a.p95Ms, `${f}.alerts.p95Ms`, 1, 3_600_000)
    if (a.errorRate != null) alerts.errorRate = number(a.errorRate, `${f}.alerts.errorRate`, 0, 1)
    if (a.minRequests != null) alerts.minRequests = number(a.minRequests, `${f}.alerts.minRequests`, 1, 1_000_000, true)
    if (a.gpuIdlePercent != null) alerts.gpuIdlePercent = number(a.gpuIdlePercent, `${f}.alerts.gpuIdlePercent`, 0, 100)
    if (a.gpuOverloadedPercent != null) alerts.gpuOverloadedPercent = number(a.gpuOverloadedPercent, `${f}.alerts.gpuOverloadedPercent`, 0, 100)
    if (a.minRatePerMin != null) {
      if (!isObject(a.minRatePerMin)) fail(`${f}.alerts.minRatePerMin must be an object of capability names to requests per minute`)
      alerts.minRatePerMin = {}
      for (const [name, rate] of Object.entries(a.minRatePerMin)) alerts.minRatePerMin[name] = number(rate, `${f}.alerts.minRatePerMin.${name}`, 0, 1e9)
    }
    out.alerts = alerts
  }
  return out
}
