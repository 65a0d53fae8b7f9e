import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_RUNTIME_CONFIG, loadRuntimeConfig, parseRuntimeConfig } from '../runtime-config'

afterEach(() => vi.unstubAllGlobals())

describe('runtime config', () => {
  it('reads the service name from /config.json', async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ serviceName: 'frontend-staging' })))
    vi.stubGlobal('fetch', fetch)
    await expect(loadRuntimeConfig()).resolves.toEqual({ serviceName: 'frontend-staging', showTestError: false })
    expect(fetch).toHaveBeenCalledWith('/config.json', expect.objectContaining({ cache: 'no-store' }))
  })

  it.each([
    ['a 404', () => new Response('nope', { status: 404 })],
    ['broken JSON', () => new Response('{serviceName')],
    ['a network error', () => Promise.reject(new TypeError('Failed to fetch'))],
  ])('falls back to the default on %s', async (_name, reply) => {
    vi.stubGlobal('fetch', vi.fn(async () => reply()))
    await expect(loadRuntimeConfig()).resolves.toEqual(DEFAULT_RUNTIME_CONFIG)
  })

  it('rejects service names that are not plain identifiers', () => {
    expect(parseRuntimeConfig({ serviceName: '' })).toEqual(DEFAULT_RUNTIME_CONFIG)
    expect(parseRuntimeConfig({ serviceName: 'a b' })).toEqual(DEFAULT_RUNTIME_CONFIG)
    expect(parseRuntimeConfig({ serviceName: 42 })).toEqual(DEFAULT_RUNTIME_CONFIG)
    expect(parseRuntimeConfig(null)).toEqual(DEFAULT_RUNTIME_CONFIG)
    expect(parseRuntimeConfig({ serviceName: 'frontend.eu-1_b' })).toEqual({
      serviceName: 'frontend.eu-1_b',
      showTestError: false,
    })
  })

  it('shows the test-error control only when the deployment says true', () => {
    expect(parseRuntimeConfig({ serviceName: 'frontend', showTestError: true }).showTestError).toBe(true)
    for (const value of [false, 'true', 1, null, undefined]) {
      expect(parseRuntimeConfig({ serviceName: 'frontend', showTestError: value }).showTestError).toBe(false)
    }
    // A bad value of one field keeps the other.
    expect(parseRuntimeConfig({ serviceName: 'a b', showTestError: true })).toEqual({
      serviceName: 'frontend',
      showTestError: true,
    })
  })
})
