// Reading a process's JSON config file: one schema per process, defaults beside it, unknown keys
// refused by name, the result deeply frozen so no code can change configuration at run time.
import { readFileSync } from 'node:fs';
import { JobError } from './errors.ts';
import type { Check } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value as Record<string, unknown>)) deepFreeze(inner);
  }
  return value;
}

/** Checks raw config data; a rule violation becomes a ConfigError naming the key. */
export function parseConfig<T>(raw: unknown, check: Check<T>, source: string): Readonly<T> {
  try {
    return deepFreeze(check(raw, ''));
  } catch (error) {
    if (error instanceof JobError)
      // The top level has no field name: its errors start with ": " (or a nested one with ".").
      throw new ConfigError(`${source}: ${error.message.replace(/^(\.|: )/, '')}`);
    throw error;
  }
}

export function readConfigFile<T>(path: string, check: Check<T>): Readonly<T> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read config file: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
  return parseConfig(raw, check, path);
}
