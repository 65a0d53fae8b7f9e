// The web vitals reporter with web-vitals' callbacks driven by hand (happy-dom has no paint or
// layout-shift entries; the browser test in Chromium measures real ones): each metric becomes one
// `browser.web_vital` record in the page load's trace, and a report made while hidden is flushed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TraceFlags } from '@opentelemetry/api'
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs'
import type { MetricType } from 'web-vitals'

type Report = (metric: MetricType) => void
const subscribed = new Map<string, Report>()
const options = new Map<string, unknown>()

vi.mock('web-vitals', () => {
  const subscribe = (name: string) => (report: Report, opts?: unknown) => {
    subscribed.set(name, report)
    options.set(name, opts)
  }
  return { onLCP: subscribe('LCP'), onINP: subscribe('INP'), onCLS: subscribe('CLS'), onTTFB: subscribe('TTFB') }
})

const PAGE = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED }
const exporter = new InMemoryLogRecordExporter()
const provider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] })

function metric(name: MetricType['name'], value: number, rating: MetricType['rating']): MetricType {
  return { name, value, rating, delta: value, id: `v5-${name}`, entries: [], navigationType: 'navigate', navigationId: 1 } as MetricType
}

function setVisibility(state: DocumentVisibilityState): void {
  Object.defineProperty(document, 'visibilityState', { value: state, configurable: true })
  document.dispatchEvent(new Event('visibilitychange'))
}

beforeEach(() => {
  subscribed.clear()
  options.clear()
})
afterEach(() => {
  exporter.reset()
  Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
})

describe('web vitals', () => {
  it('subscribes to LCP, INP, CLS and TTFB, and records each as a browser.web_vital in the page trace', async () => {
    const { reportWebVitals } = await import('../web-vitals')
    const onHidden = vi.fn()
    reportWebVitals(provider.getLogger('t'), PAGE, 'http://board.test/', onHidden)
    expect([...subscribed.keys()].sort()).toEqual(['CLS', 'INP', 'LCP', 'TTFB'])

    subscribed.get('LCP')!(metric('LCP', 1234.5, 'good'))
    subscribed.get('CLS')!(metric('CLS', 0.1234, 'needs-improvement'))
    const [lcp, cls] = exporter.getFinishedLogRecords()
    expect(lcp.eventName).toBe('browser.web_vital')
    expect(lcp.body).toBe('LCP 1235 ms (good)')
    expect(lcp.attributes).toMatchObject({
      'browser.web_vital.name': 'LCP',
      'browser.web_vital.value': 1234.5,
      'browser.web_vital.rating': 'good',
      'browser.web_vital.delta': 1234.5,
      'browser.web_vital.id': 'v5-LCP',
      'browser.web_vital.navigation_type': 'navigate',
      'url.full': 'http://board.test/',
    })
    expect(lcp.spanContext?.traceId).toBe(PAGE.traceId)
    expect(lcp.spanContext?.spanId).toBe(PAGE.spanId)
    expect(cls.body).toBe('CLS 0.123 (needs-improvement)')
    expect(onHidden).not.toHaveBeenCalled()
  })

  it('asks for a flush when a report comes while the page is hidden (it may be the last chance)', async () => {
    const { reportWebVitals } = await import('../web-vitals')
    const onHidden = vi.fn()
    reportWebVitals(provider.getLogger('t'), PAGE, 'http://board.test/', onHidden)
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    subscribed.get('INP')!(metric('INP', 48, 'good'))
    expect(exporter.getFinishedLogRecords()).toHaveLength(1)
    expect(onHidden).toHaveBeenCalledOnce()
  })

  it('keeps INP until the page is hidden, then sends the latest once, with its delta from the last sent', async () => {
    // onINP is asked for every change: its own hidden-page report can come before the entry of the
    // last interaction has been read (web-vitals.ts, inpWhenHidden).
    const { reportWebVitals } = await import('../web-vitals')
    reportWebVitals(provider.getLogger('t'), PAGE, 'http://board.test/', vi.fn())
    expect(options.get('INP')).toEqual({ reportAllChanges: true })
    const inp = subscribed.get('INP')!
    const changing = metric('INP', 40, 'good')
    inp(changing)
    changing.value = 120 // web-vitals updates the object it passed, then reports again
    changing.delta = 80
    inp(changing)
    changing.value = 999 // and goes on changing it: the record carries what was reported
    expect(exporter.getFinishedLogRecords()).toHaveLength(0)

    setVisibility('hidden')
    setVisibility('visible')
    inp({ ...changing, value: 300, delta: 180 })
    setVisibility('hidden')
    setVisibility('hidden')
    const records = exporter.getFinishedLogRecords()
    expect(records.map((r) => [r.attributes['browser.web_vital.value'], r.attributes['browser.web_vital.delta']]))
      .toEqual([[120, 120], [300, 180]])
    expect(records[0].body).toBe('INP 120 ms (good)')
  })
})
