// Keeps a user action's requests in the action's trace across `await`s, without the app importing
// OpenTelemetry. The browser has no async context, so the trace active when a click handler starts
// is gone after its first `await`; a handler captures it up front and runs each later request in it.
// Telemetry installs how to capture and re-enter a context; without telemetry, requests just run.

/** Runs a function in the context captured when the runner was made. */
export type InContext = <T>(fn: () => T) => T
export type ContextCapture = () => InContext

/** Runs a function as it is, in whatever context is active: the runner without telemetry. */
export const runNow: InContext = (fn) => fn()
let capture: ContextCapture | null = null

export function setContextCapture(next: ContextCapture | null): void {
  capture = next
}

/** Call synchronously where the action starts (in the handler, before any `await`). */
export function captureContext(): InContext {
  return capture ? capture() : runNow
}
