// Settings that differ per deployment, read at page load from /config.json (rendered by nginx from
// env vars), so one built image serves every environment.

export interface RuntimeConfig {
  serviceName: string
  /** The "Trigger test error" control, for showing that browser errors reach the log backend. */
  showTestError: boolean
}

export const DEFAULT_RUNTIME_CONFIG: RuntimeConfig = { serviceName: 'frontend', showTestError: false }

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/** Each field on its own: a bad value falls back to its default without discarding the others. */
export function parseRuntimeConfig(raw: unknown): RuntimeConfig {
  const fields = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {}
  const { serviceName, showTestError } = fields
  return {
    serviceName:
      typeof serviceName === 'string' && SERVICE_NAME.test(serviceName) ? serviceName : DEFAULT_RUNTIME_CONFIG.serviceName,
    showTestError: showTestError === true,
  }
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
