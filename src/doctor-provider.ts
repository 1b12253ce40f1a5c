// doctor's check of the provider key: one cheap authenticated request (GET /models lists the
// models, costs nothing and needs a valid key), so a wrong or revoked key is found before a
// backfill meets it an hour in. The host is named when it cannot be reached (a proxy, a firewall,
// a wrong OPENAI_BASE_URL).
import type { OpenAISettings } from './config.js';
import type { Finding } from './doctor.js';
import { errorMessage } from './errors.js';

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const TIMEOUT_MS = 10_000;

export async function checkProviderKey(openai: OpenAISettings): Promise<Finding | undefined> {
  if (!openai.apiKey) return undefined;
  const name = 'provider key';
  const url = `${(openai.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '')}/models`;
  const host = new URL(url).host;
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${openai.apiKey}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : errorMessage(err);
    return {
      name,
      ok: false,
      detail: `could not reach ${host}: ${cause}`,
      hint: 'check the network (a proxy, a firewall) and OPENAI_BASE_URL; `doctor --offline` skips this check',
    };
  }
  await response.body?.cancel(); // the list itself is not needed
  if (response.ok) return { name, ok: true, detail: `OPENAI_API_KEY accepted by ${host}` };
  if (response.status === 401 || response.status === 403)
    return {
      name,
      ok: false,
      detail: `${host} refused OPENAI_API_KEY (${response.status})`,
      hint: 'set a valid key, or unset it to use the offline providers',
    };
  return {
    name,
    ok: false,
    detail: `${host} answered ${response.status} to an authenticated GET /models`,
    hint: 'try again later, or check OPENAI_BASE_URL',
  };
}
