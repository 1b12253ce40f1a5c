// The provider registry: the one place that knows every provider. Adding one is its module
// plus one line in `registered` (and its import); commands, stages and checks read from here.
import { UsageError } from '../errors.js';
import { gmail } from './gmail/index.js';
import { instagram } from './instagram/index.js';
import { twilio } from './twilio/index.js';
import type { Provider } from './types.js';
import { webform } from './webform/index.js';

const registered = [gmail, twilio, instagram, webform] as const;

/** Every provider by name. */
export const providers: Readonly<Record<string, Provider>> = Object.freeze(Object.fromEntries(registered.map((p) => [p.name, p])));

/** The known provider names, sorted. */
export const providerNames: readonly string[] = Object.freeze(Object.keys(providers).sort());

/** The provider called `name`; a UsageError (exit 2) naming the known ones otherwise. */
export function getProvider(name: string): Provider {
  const provider = Object.hasOwn(providers, name) ? providers[name] : undefined;
  if (provider === undefined) {
    throw new UsageError(`unknown provider "${name}"; known providers: ${providerNames.join(', ')}`, {
      hint: 'use --provider with one of the names listed',
    });
  }
  return provider;
}

export type { Provider } from './types.js';
