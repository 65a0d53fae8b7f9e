// The real OTLP exporters: where they send, in which encoding, and that their own requests are
// neither traced nor given a traceparent (which would loop: export -> span -> export).
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import type { Telemetry } from '../telemetry'

interface Sent {
  url: string
  method: string
  headers: Headers
}

const sent: Sent[] = []
let telemetry: Telemetry
let logWarning: typeof import('../log').logWarning

beforeAll(async () => {
  vi.stubGlobal('fetch', (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    sent.push({ url, method: init?.method ?? 'GET', headers: new Headers(init?.headers) })
    return Promise.resolve(new Response('{}', { status: 200 }))
  })
  const { startTelemetry } = await import('../telemetry')
  logWarning = (await import('../log')).logWarning
  telemetry = startTelemetry({ config: { serviceName: 'frontend', showTestError: false } })
})

afterAll(async () => {
  await telemetry.shutdown()
  vi.unstubAllGlobals()
})

it('exports traces as protobuf to /otlp/v1/traces and logs as JSON to /otlp/v1/logs', async () => {
  telemetry.tracerProvider.getTracer('t').startSpan('probe').end()
  logWarning('probe')
  await telemetry.flush()

  const traces = sent.find((r) => r.url.endsWith('/otlp/v1/traces'))
  const logs = sent.find((r) => r.url.endsWith('/otlp/v1/logs'))
  expect(traces?.url).toBe(`${location.origin}/otlp/v1/traces`)
  expect(traces?.method).toBe('POST')
  expect(traces?.headers.get('content-type')).toBe('application/x-protobuf')
  expect(logs?.url).toBe(`${location.origin}/otlp/v1/logs`)
  expect(logs?.headers.get('content-type')).toBe('application/json')
  for (const request of [traces, logs]) expect(request?.headers.has('traceparent')).toBe(false)

  // No spans were made for the export requests themselves.
  sent.length = 0
  await new Promise((resolve) => setTimeout(resolve, 350))
  await telemetry.flush()
  expect(sent.filter((r) => r.url.endsWith('/otlp/v1/traces'))).toHaveLength(0)
})
