// Stand-in for telemetry.ts when built with VITE_TELEMETRY=off: same API, no OpenTelemetry or
// web-vitals in the bundle, so the size and speed cost of telemetry can be measured.
import type { RuntimeConfig } from './runtime-config'

export interface TelemetryOptions {
  config: RuntimeConfig
}

export interface Telemetry {
  flush(): Promise<void>
  shutdown(): Promise<void>
}

export function startTelemetry(_options: TelemetryOptions): Telemetry {
  return { flush: async () => {}, shutdown: async () => {} }
}
