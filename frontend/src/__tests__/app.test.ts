// The UI against a fake backend: the test ids a browser test relies on, loading and error states,
// text-only message rendering, newest-first order, and the deliberately failing button.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, nextTick, type App as VueApp } from 'vue'
import App from '../App.vue'

const TRACE_ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
type Route = (init: RequestInit) => { status: number; body?: unknown }

let mounted: VueApp | null = null

function backend(routes: Record<string, Route>) {
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input)
    const key = `${init.method ?? 'GET'} ${url.split('?')[0]}`
    const route = routes[key]
    if (!route) return new Response('not found', { status: 404 })
    const { status, body } = route(init)
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json' },
    })
  })
  vi.stubGlobal('fetch', fetch)
  return fetch
}

function mount(errorHandler = vi.fn(), props: { showTestError?: boolean } = {}) {
  const root = document.createElement('div')
  document.body.appendChild(root)
  mounted = createApp(App, props)
  mounted.config.errorHandler = errorHandler
  mounted.mount(root)
  return { root, errorHandler }
}

const byTestId = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)
const allByTestId = (id: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)]

async function type(id: string, value: string) {
  const input = byTestId(id) as HTMLInputElement
  input.value = value
  input.dispatchEvent(new Event('input'))
  await nextTick()
}

afterEach(() => {
  mounted?.unmount()
  mounted = null
  document.body.innerHTML = ''
  vi.unstubAllGlobals()
})

const anonymous: Route = () => ({ status: 401, body: { error: { code: 'unauthorized', message: 'not logged in', trace_id: TRACE_ID } } })

describe('message board', () => {
  it('renders messages newest first, as text only', async () => {
    backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({
        status: 200,
        body: {
          messages: [
            { id: 1, author: 'bob', body: 'first', created_at: '2026-01-01T00:00:00.000Z' },
            { id: 3, author: 'eve', body: '<img src=x onerror="alert(1)"><b>bold?</b>', created_at: '2026-01-01T00:02:00.000Z' },
            { id: 2, author: 'amy', body: 'second', created_at: '2026-01-01T00:01:00.000Z' },
          ],
        },
      }),
    })
    mount()
    await nextTick()
    expect(byTestId('messages-loading')).not.toBeNull()
    await vi.waitFor(() => expect(allByTestId('message-item')).toHaveLength(3))
    expect(allByTestId('message-author').map((el) => el.textContent)).toEqual(['eve', 'amy', 'bob'])
    const hostile = allByTestId('message-body')[0]
    expect(hostile.textContent).toBe('<img src=x onerror="alert(1)"><b>bold?</b>')
    expect(hostile.querySelector('img, b')).toBeNull()
    expect(byTestId('messages-loading')).toBeNull()
    expect(byTestId('login-hint')).not.toBeNull()
  })

  it('logs in, shows who is logged in, posts a message and reloads the list', async () => {
    let loggedIn = false
    const posted: unknown[] = []
    const fetch = backend({
      'GET /api/auth/me': () => (loggedIn ? { status: 200, body: { username: 'alice' } } : anonymous({})),
      'POST /api/auth/login': () => ((loggedIn = true), { status: 200, body: { username: 'alice' } }),
      'POST /api/messages': (init) => (
        posted.push(JSON.parse(String(init.body))),
        { status: 201, body: { id: 9, author: 'alice', body: 'hello', created_at: '2026-01-01T00:00:00.000Z' } }
      ),
      'GET /api/messages': () => ({
        status: 200,
        body: { messages: posted.length ? [{ id: 9, author: 'alice', body: 'hello', created_at: '2026-01-01T00:00:00.000Z' }] : [] },
      }),
      'POST /api/auth/logout': () => ((loggedIn = false), { status: 204 }),
    })
    mount()
    await vi.waitFor(() => expect(byTestId('username-input')).not.toBeNull())
    await type('username-input', 'alice')
    await type('password-input', 'correct horse')
    byTestId('auth-form')!.dispatchEvent(new Event('submit', { cancelable: true }))
    await vi.waitFor(() => expect(byTestId('whoami')?.textContent).toBe('alice'))
    expect(byTestId('messages-empty')).not.toBeNull()

    await type('message-input', '  hello  ')
    byTestId('post-form')!.dispatchEvent(new Event('submit', { cancelable: true }))
    await vi.waitFor(() => expect(allByTestId('message-body').map((el) => el.textContent)).toEqual(['hello']))
    expect(posted).toEqual([{ body: 'hello' }])

    byTestId('logout-button')!.click()
    await vi.waitFor(() => expect(byTestId('login-button')).not.toBeNull())
    expect(fetch.mock.calls.some(([url, init]) => url === '/api/auth/logout' && init?.method === 'POST')).toBe(true)
  })

  it('signs up and then logs in with the same credentials', async () => {
    const calls: string[] = []
    backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({ status: 200, body: { messages: [] } }),
      'POST /api/auth/signup': () => (calls.push('signup'), { status: 201, body: { username: 'newbie' } }),
      'POST /api/auth/login': () => (calls.push('login'), { status: 200, body: { username: 'newbie' } }),
    })
    mount()
    await vi.waitFor(() => expect(byTestId('signup-button')).not.toBeNull())
    await type('username-input', 'newbie')
    await type('password-input', 'long enough')
    byTestId('signup-button')!.click()
    await vi.waitFor(() => expect(byTestId('whoami')?.textContent).toBe('newbie'))
    expect(calls).toEqual(['signup', 'login'])
  })
})

describe('errors', () => {
  it('shows the error message and the trace id a user can report', async () => {
    backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({ status: 200, body: { messages: [] } }),
      'POST /api/auth/login': () => ({
        status: 401,
        body: { error: { code: 'invalid_credentials', message: 'wrong username or password', trace_id: TRACE_ID } },
      }),
    })
    mount()
    await vi.waitFor(() => expect(byTestId('login-button')).not.toBeNull())
    await type('username-input', 'alice')
    await type('password-input', 'wrong password')
    byTestId('auth-form')!.dispatchEvent(new Event('submit', { cancelable: true }))
    await vi.waitFor(() => expect(byTestId('error-box')).not.toBeNull())
    expect(byTestId('error-message')?.textContent).toBe('wrong username or password')
    expect(byTestId('error-trace-id')?.textContent).toBe(TRACE_ID)
    byTestId('error-dismiss')!.click()
    await nextTick()
    expect(byTestId('error-box')).toBeNull()
  })

  it('shows an outage of the message list and logs a warning', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({
        status: 503,
        body: { error: { code: 'mariadb_unavailable', message: 'mariadb is unavailable', trace_id: TRACE_ID } },
      }),
    })
    mount()
    await vi.waitFor(() => expect(byTestId('error-box')).not.toBeNull())
    expect(byTestId('error-trace-id')?.textContent).toBe(TRACE_ID)
    expect(warn).toHaveBeenCalledWith('api call failed: mariadb_unavailable', expect.objectContaining({ 'backend.trace_id': TRACE_ID }))
  })

  it('has no test-error button unless the runtime config asks for it', async () => {
    backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({ status: 200, body: { messages: [] } }),
    })
    mount()
    await vi.waitFor(() => expect(byTestId('session-loading')).toBeNull())
    expect(byTestId('trigger-error')).toBeNull()
  })

  it('the test-error button throws out of its click handler', async () => {
    const fetch = backend({
      'GET /api/auth/me': anonymous,
      'GET /api/messages': () => ({ status: 200, body: { messages: [] } }),
    })
    const { errorHandler } = mount(vi.fn(), { showTestError: true })
    await vi.waitFor(() => expect(byTestId('trigger-error')).not.toBeNull())
    fetch.mockClear()
    byTestId('trigger-error')!.click()
    expect(errorHandler).toHaveBeenCalledTimes(1)
    expect((errorHandler.mock.calls[0][0] as Error).message).toBe('test error triggered from the UI')
    expect(fetch).toHaveBeenCalledTimes(1) // the traced request started before the throw
  })
})
