// The app's own warnings: always on the console, and forwarded to whatever sink telemetry installs,
// so components report problems without importing OpenTelemetry.

export type LogAttributes = Record<string, string | number | boolean>
export type WarningSink = (message: string, attributes: LogAttributes) => void

let sink: WarningSink | null = null

export function setWarningSink(next: WarningSink | null): void {
  sink = next
}

export function logWarning(message: string, attributes: LogAttributes = {}): void {
  console.warn(message, attributes)
  sink?.(message, attributes)
}
