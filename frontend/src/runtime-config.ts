// Settings that differ per deployment, read at page load from /config.json (rendered by nginx from
// env vars), so one built image serves every environment.

export interface RuntimeConfig {
  serviceName: string
}

export const DEFAULT_RUNTIME_CONFIG: RuntimeConfig = { serviceName: 'frontend' }

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

export function parseRuntimeConfig(raw: unknown): RuntimeConfig {
  const value = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).serviceName : undefined
  return typeof value === 'string' && SERVICE_NAME.test(value) ? { serviceName: value } : DEFAULT_RUNTIME_CONFIG
}

/** Never fails: a missing or broken /config.json must not keep the app from starting. */
export async function loadRuntimeConfig(url = '/config.json'): Promise<RuntimeConfig> {
  try {
    const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' })
    if (!response.ok) return DEFAULT_RUNTIME_CONFIG
    return parseRuntimeConfig(await response.json())
  } catch {
    return DEFAULT_RUNTIME_CONFIG
  }
}
