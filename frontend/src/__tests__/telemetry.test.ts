// Telemetry against in-memory exporters in happy-dom: resource, propagation, click -> fetch
// parentage (across awaits through api.inCurrentTrace, and a control without it), error and warning
// records in the active trace, flush on page hide. Web vitals: web-vitals.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { SpanKind } from '@opentelemetry/api'
import { InMemoryLogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-web'
import type { Telemetry } from '../telemetry'

interface SeenRequest {
  url: string
  method: string
  headers: Record<string, string>
}

const seen: SeenRequest[] = []

function headersOf(init?: RequestInit): Record<string, string> {
  const out: Record<string, string> = {}
  new Headers(init?.headers).forEach((value, key) => (out[key] = value))
  return out
}

// Installed before the fetch instrumentation loads, as the browser's fetch would be.
const fakeFetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  seen.push({ url, method: init?.method ?? 'GET', headers: headersOf(init) })
  const body = url.includes('/api/messages') ? { messages: [] } : { username: 'alice' }
  return Promise.resolve(
    new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }),
  )
}

const spans = new InMemorySpanExporter()
const records = new InMemoryLogRecordExporter()
let telemetry: Telemetry
let api: typeof import('../api').api
let logWarning: typeof import('../log').logWarning

beforeAll(async () => {
  vi.stubGlobal('fetch', fakeFetch)
  // Without zone.js the user-interaction instrumentation patches EventTarget.prototype. In a browser
  // that is the prototype every element inherits; happy-dom's global EventTarget is another class
  // than the one its elements inherit, so point the global at the elements' one.
  vi.stubGlobal('EventTarget', Object.getPrototypeOf(Node.prototype).constructor)
  const mod = await import('../telemetry')
  telemetry = mod.startTelemetry({
    config: { serviceName: 'board-web-test', showTestError: false },
    serviceVersion: '9.9.9',
    sessionId: '0123456789abcdef0123456789abcdef',
    traceExporter: spans,
    logExporter: records,
  })
  api = (await import('../api')).api
  logWarning = (await import('../log')).logWarning
})

afterEach(async () => {
  // A fetch span ends up to 300 ms after its response (it waits for resource timing); let the
  // last test's spans finish so they cannot leak into the next test's assertions.
  await new Promise((resolve) => setTimeout(resolve, 350))
  await telemetry.flush()
  spans.reset()
  records.reset()
  seen.length = 0
  document.body.innerHTML = ''
})

afterAll(async () => {
  await telemetry.shutdown()
  vi.unstubAllGlobals()
})

async function waitFor<T>(read: () => T | undefined, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await telemetry.flush()
    const value = read()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const fetchSpans = () => spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT)
const spanNamed = (name: string) => spans.getFinishedSpans().find((s) => s.name === name)
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId

function button(onClick: (event: Event) => unknown): HTMLButtonElement {
  const el = document.createElement('button')
  el.type = 'button'
  el.textContent = 'go'
  el.addEventListener('click', onClick)
  document.body.appendChild(el)
  return el
}

describe('resource', () => {
  it('carries the runtime service name, the build version and the session id', () => {
    const attrs = telemetry.resource.attributes
    expect(attrs['service.name']).toBe('board-web-test')
    expect(attrs['service.version']).toBe('9.9.9')
    expect(attrs['session.id']).toBe('0123456789abcdef0123456789abcdef')
  })

  it('is what exported spans and log records carry', async () => {
    const span = telemetry.tracerProvider.getTracer('t').startSpan('probe')
    span.end()
    logWarning('probe warning')
    const exported = await waitFor(() => spanNamed('probe'), 'probe span')
    const record = await waitFor(() => records.getFinishedLogRecords()[0], 'warning record')
    expect(exported.resource.attributes['service.name']).toBe('board-web-test')
    expect(record.resource.attributes['service.name']).toBe('board-web-test')
  })
})

describe('session id', () => {
  it('is 32 hex characters, reused within a tab session', async () => {
    const { pageSessionId } = await import('../telemetry')
    const store = new Map<string, string>()
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    } as unknown as Storage
    const first = pageSessionId(storage)
    expect(first).toMatch(/^[0-9a-f]{32}$/)
    expect(pageSessionId(storage)).toBe(first)
  })
})

describe('fetch instrumentation', () => {
  it('adds a W3C traceparent to same-origin /api/ calls, matching the fetch span', async () => {
    await api.listMessages(5)
    const request = seen.find((r) => r.url.includes('/api/messages?limit=5'))
    expect(request?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    const span = await waitFor(() => fetchSpans()[0], 'fetch span')
    const [, traceId, spanId] = request!.headers.traceparent.split('-')
    expect(span.spanContext().traceId).toBe(traceId)
    expect(span.spanContext().spanId).toBe(spanId)
  })

  it('does not add traceparent to other origins', async () => {
    await fetch('https://elsewhere.example/api/x')
    expect(seen.at(-1)?.headers.traceparent).toBeUndefined()
  })
})

describe('click -> fetch parentage', () => {
  it('parents every fetch of an async click handler on the click span, also after an await', async () => {
    button(async () => {
      const calls = api.inCurrentTrace()
      await calls.me()
      await calls.listMessages(1)
    }).click()
    const [first, second] = await waitFor(
      () => (fetchSpans().length >= 2 ? fetchSpans() : undefined),
      'two fetch spans',
    )
    const click = await waitFor(() => spanNamed('click'), 'click span')
    for (const span of [first, second]) {
      expect(span.spanContext().traceId).toBe(click.spanContext().traceId)
      expect(parentId(span)).toBe(click.spanContext().spanId)
    }
  })

  it('control: without a captured context, a request after an await loses the click as parent', async () => {
    button(async () => {
      await api.me()
      await api.listMessages(1)
    }).click()
    await waitFor(() => (fetchSpans().length >= 2 ? true : undefined), 'two fetch spans')
    const click = await waitFor(() => spanNamed('click'), 'click span')
    const byUrl = (part: string) =>
      fetchSpans().find((s) => String(s.attributes['http.url'] ?? s.attributes['url.full']).includes(part))!
    expect(parentId(byUrl('/api/auth/me'))).toBe(click.spanContext().spanId)
    expect(parentId(byUrl('/api/messages'))).not.toBe(click.spanContext().spanId)
  })

  it('parents the fetch of a form submit on the submit span', async () => {
    const form = document.createElement('form')
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const calls = api.inCurrentTrace()
      await Promise.resolve()
      await calls.login('alice', 'correct horse')
    })
    document.body.appendChild(form)
    form.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }))
    const span = await waitFor(() => fetchSpans()[0], 'fetch span')
    const submit = await waitFor(() => spanNamed('submit'), 'submit span')
    expect(parentId(span)).toBe(submit.spanContext().spanId)
  })
})

describe('browser logs', () => {
  const lastRecord = () => waitFor(() => records.getFinishedLogRecords().at(-1), 'log record')
  const traceIdOf = (record: ReadableLogRecord) => record.spanContext?.traceId

  it('records an error reported inside a click handler in the click trace', async () => {
    // What main.ts does with errors Vue catches: report them as uncaught, synchronously.
    button(() => {
      try {
        throw new TypeError('boom in handler')
      } catch (error) {
        window.dispatchEvent(new ErrorEvent('error', { error, message: 'boom in handler' }))
      }
    }).click()
    const record = await lastRecord()
    const click = await waitFor(() => spanNamed('click'), 'click span')
    expect(record.severityText).toBe('ERROR')
    expect(record.body).toBe('boom in handler')
    expect(record.attributes['exception.type']).toBe('TypeError')
    expect(record.attributes['exception.stacktrace']).toContain('boom in handler')
    expect(traceIdOf(record)).toBe(click.spanContext().traceId)
  })

  it('gives an error outside any span a trace id of its own', async () => {
    window.dispatchEvent(new ErrorEvent('error', { error: new Error('lonely'), message: 'lonely' }))
    const record = await lastRecord()
    const span = await waitFor(() => spanNamed('browser.error'), 'browser.error span')
    expect(traceIdOf(record)).toMatch(/^[0-9a-f]{32}$/)
    expect(traceIdOf(record)).toBe(span.spanContext().traceId)
  })

  it('records unhandled promise rejections', async () => {
    const event = new Event('unhandledrejection') as PromiseRejectionEvent
    Object.defineProperty(event, 'reason', { value: new Error('nobody caught me') })
    window.dispatchEvent(event)
    const record = await lastRecord()
    expect(record.body).toBe('unhandled rejection: nobody caught me')
    expect(traceIdOf(record)).toMatch(/^[0-9a-f]{32}$/)
  })

  it('forwards the app warnings with the active trace context', async () => {
    button(() => logWarning('api call failed: db_unavailable', { 'error.code': 'db_unavailable' })).click()
    const record = await lastRecord()
    const click = await waitFor(() => spanNamed('click'), 'click span')
    expect(record.severityText).toBe('WARN')
    expect(record.attributes['error.code']).toBe('db_unavailable')
    expect(traceIdOf(record)).toBe(click.spanContext().traceId)
    // The click span ends when its handler returns, not when the log batch timer fires.
    const [seconds, nanos] = click.duration
    expect(seconds * 1000 + nanos / 1e6).toBeLessThan(250)
  })
})

describe('page hide', () => {
  it('flushes buffered spans and records when the page becomes hidden', async () => {
    telemetry.tracerProvider.getTracer('t').startSpan('buffered').end()
    logWarning('buffered warning')
    // Nothing has been exported yet: the batch processors wait seconds before sending.
    expect(spans.getFinishedSpans()).toHaveLength(0)
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
    await vi.waitFor(() => {
      expect(spanNamed('buffered')).toBeDefined()
      expect(records.getFinishedLogRecords()).toHaveLength(1)
    })
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
  })
})
