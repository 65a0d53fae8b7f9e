// The one client for the backend's JSON API: every call and every error shape goes through here,
// so components only see typed results or an ApiError carrying the trace id a user can report.

import { captureContext, runNow, type InContext } from './trace-context'

export interface User {
  username: string
}

export interface Message {
  id: number
  author: string
  body: string
  created_at: string
}

/** A failed API call: the backend's error body when it sent one, a synthesised one otherwise. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly traceId: string | null

  constructor(status: number, code: string, message: string, traceId: string | null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.traceId = traceId
  }
}

const TRACE_ID = /^[0-9a-f]{32}$/

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

async function readBody(response: Response): Promise<unknown> {
  // 204 and empty bodies are fine; a proxy's HTML error page is not JSON and must not throw here.
  const text = await response.text()
  if (text === '') return null
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function toApiError(response: Response, body: unknown): ApiError {
  const error = isRecord(body) && isRecord(body.error) ? body.error : null
  const code = error && typeof error.code === 'string' ? error.code : `http_${response.status}`
  const message =
    error && typeof error.message === 'string' && error.message !== ''
      ? error.message
      : `request failed with status ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
  const traceId = error && typeof error.trace_id === 'string' && TRACE_ID.test(error.trace_id) ? error.trace_id : null
  return new ApiError(response.status, code, message, traceId)
}

async function request<T>(method: 'GET' | 'POST', path: string, payload?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  }
  if (method === 'POST') {
    // The backend rejects state-changing requests without this header (a cheap CSRF barrier).
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' }
    init.body = JSON.stringify(payload ?? {})
  }
  let response: Response
  try {
    response = await fetch(path, init)
  } catch (err) {
    throw new ApiError(0, 'network_error', `network error: ${err instanceof Error ? err.message : String(err)}`, null)
  }
  const body = await readBody(response)
  if (!response.ok) throw toApiError(response, body)
  if (body === undefined) {
    throw new ApiError(response.status, 'invalid_response', 'the server sent a response that is not JSON', null)
  }
  return body as T
}

function client(inContext: InContext) {
  // Each call starts its fetch synchronously inside inContext: the fetch span's parent is decided then.
  const call = <T>(method: 'GET' | 'POST', path: string, payload?: unknown) =>
    inContext(() => request<T>(method, path, payload))
  return {
    signup: (username: string, password: string) => call<User>('POST', '/api/auth/signup', { username, password }),
    login: (username: string, password: string) => call<User>('POST', '/api/auth/login', { username, password }),
    logout: () => call<null>('POST', '/api/auth/logout'),
    /** The logged-in user, or null when the session is missing or expired (401). */
    async me(): Promise<User | null> {
      try {
        return await call<User>('GET', '/api/auth/me')
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return null
        throw err
      }
    },
    async listMessages(limit = 50): Promise<Message[]> {
      const body = await call<{ messages: Message[] }>('GET', `/api/messages?limit=${encodeURIComponent(limit)}`)
      return body.messages
    },
    postMessage: (body: string) => call<Message>('POST', '/api/messages', { body }),
  }
}

export type Api = ReturnType<typeof client>

export const api = {
  ...client(runNow),
  /**
   * The same calls, each made in the trace that is active now. A handler that awaits one request
   * before making another calls this first, so both stay children of its click or submit span.
   */
  inCurrentTrace: (): Api => client(captureContext()),
}
