import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError } from '../api'

function respond(status: number, body: string | object | null, contentType = 'application/json') {
  const text = body === null ? null : typeof body === 'string' ? body : JSON.stringify(body)
  return vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) =>
    new Response(text, { status, headers: text === null ? {} : { 'Content-Type': contentType } }),
  )
}

function lastCall(mock: ReturnType<typeof respond>): { url: string; init: RequestInit } {
  const [url, init] = mock.mock.calls.at(-1)!
  return { url: String(url), init: init ?? {} }
}

async function caught(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError)
    return err as ApiError
  }
  throw new Error('expected the call to fail')
}

afterEach(() => vi.unstubAllGlobals())

describe('requests', () => {
  it('POSTs JSON with Content-Type and same-origin credentials', async () => {
    const fetch = respond(200, { username: 'alice' })
    vi.stubGlobal('fetch', fetch)
    await expect(api.login('alice', 'secret-pass')).resolves.toEqual({ username: 'alice' })
    const { url, init } = lastCall(fetch)
    expect(url).toBe('/api/auth/login')
    expect(init.method).toBe('POST')
    expect(init.credentials).toBe('same-origin')
    expect(new Headers(init.headers).get('content-type')).toBe('application/json')
    expect(JSON.parse(String(init.body))).toEqual({ username: 'alice', password: 'secret-pass' })
  })

  it('sends Content-Type even on a POST without a payload (logout)', async () => {
    const fetch = respond(204, null)
    vi.stubGlobal('fetch', fetch)
    await expect(api.logout()).resolves.toBeNull()
    const { init } = lastCall(fetch)
    expect(new Headers(init.headers).get('content-type')).toBe('application/json')
    expect(init.body).toBe('{}')
  })

  it('GETs without a body', async () => {
    const fetch = respond(200, { messages: [] })
    vi.stubGlobal('fetch', fetch)
    await api.listMessages(20)
    const { url, init } = lastCall(fetch)
    expect(url).toBe('/api/messages?limit=20')
    expect(init.method).toBe('GET')
    expect(init.body).toBeUndefined()
    expect(init.credentials).toBe('same-origin')
  })

  it('returns the message list and the posted message', async () => {
    const message = { id: 7, author: 'bob', body: 'hi', created_at: '2026-01-01T00:00:00.000Z' }
    vi.stubGlobal('fetch', respond(200, { messages: [message] }))
    await expect(api.listMessages()).resolves.toEqual([message])
    const post = respond(201, message)
    vi.stubGlobal('fetch', post)
    await expect(api.postMessage('hi')).resolves.toEqual(message)
    expect(JSON.parse(String(lastCall(post).init.body))).toEqual({ body: 'hi' })
  })
})

describe('errors', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'

  it('turns the backend error body into an ApiError with code, message, trace id and status', async () => {
    vi.stubGlobal(
      'fetch',
      respond(409, { error: { code: 'username_taken', message: 'that username is taken', trace_id: traceId } }),
    )
    const err = await caught(api.signup('alice', 'secret-pass'))
    expect(err).toMatchObject({ status: 409, code: 'username_taken', message: 'that username is taken', traceId })
  })

  it('survives a non-JSON error body (a proxy error page)', async () => {
    vi.stubGlobal('fetch', respond(502, '<html><body>Bad Gateway</body></html>', 'text/html'))
    const err = await caught(api.listMessages())
    expect(err).toMatchObject({ status: 502, code: 'http_502', traceId: null })
    expect(err.message).toContain('502')
  })

  it('survives a JSON error body of another shape and an invalid trace id', async () => {
    vi.stubGlobal('fetch', respond(500, { error: { code: 'internal_error', trace_id: 'not-hex' } }))
    const err = await caught(api.listMessages())
    expect(err).toMatchObject({ status: 500, code: 'internal_error', traceId: null })
    expect(err.message).toContain('500')
  })

  it('reports a network failure as status 0', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    const err = await caught(api.listMessages())
    expect(err).toMatchObject({ status: 0, code: 'network_error' })
  })

  it('rejects a 200 whose body is not JSON', async () => {
    vi.stubGlobal('fetch', respond(200, 'surprise', 'text/plain'))
    const err = await caught(api.listMessages())
    expect(err).toMatchObject({ status: 200, code: 'invalid_response' })
  })

  it('maps 401 from /me to "not logged in" rather than an error', async () => {
    vi.stubGlobal('fetch', respond(401, { error: { code: 'unauthorized', message: 'not logged in', trace_id: traceId } }))
    await expect(api.me()).resolves.toBeNull()
  })

  it('still throws other /me failures', async () => {
    vi.stubGlobal('fetch', respond(503, { error: { code: 'redis_unavailable', message: 'down', trace_id: traceId } }))
    expect((await caught(api.me())).code).toBe('redis_unavailable')
  })
})
