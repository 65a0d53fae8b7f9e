import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_RUNTIME_CONFIG, loadRuntimeConfig, parseRuntimeConfig } from '../runtime-config'

afterEach(() => vi.unstubAllGlobals())

describe('runtime config', () => {
  it('reads the service name from /config.json', async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ serviceName: 'frontend-staging' })))
    vi.stubGlobal('fetch', fetch)
    await expect(loadRuntimeConfig()).resolves.toEqual({ serviceName: 'frontend-staging' })
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
    expect(parseRuntimeConfig({ serviceName: 'frontend.eu-1_b' })).toEqual({ serviceName: 'frontend.eu-1_b' })
  })
})
