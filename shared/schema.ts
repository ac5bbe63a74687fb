// A small schema checker for data that crosses a trust boundary: executor frames, API requests
// and config files. Every failure names the field and the rule it broke:
//   "spec.limits.cpus: must be at most 64"
// Objects reject unknown keys and come back as fresh plain objects, so nothing a peer sent (a
// __proto__ key, an unexpected field) survives validation.
import { JobError } from './errors.ts';

export type Check<T> = (value: unknown, field: string) => T;

/** Marks a key of an object schema as optional (absent or undefined → left out of the result). */
export interface OptionalCheck<T> {
  readonly optional: Check<T>;
}

type Shape = Record<string, Check<unknown> | OptionalCheck<unknown>>;
type RequiredKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalCheck<unknown> ? never : K;
}[keyof S];
type OptionalKeys<S extends Shape> = Exclude<keyof S, RequiredKeys<S>>;
export type Infer<S extends Shape> = {
  [K in RequiredKeys<S>]: S[K] extends Check<infer T> ? T : never;
} & {
  [K in OptionalKeys<S>]?: S[K] extends OptionalCheck<infer T> ? T : never;
};

export function invalid(field: string, rule: string): JobError {
  return new JobError('invalid-argument', `${field}: ${rule}`, { field });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function optional<T>(check: Check<T>): OptionalCheck<T> {
  return { optional: check };
}

export interface StringRules {
  minLength?: number;
  /** UTF-8 bytes, which is what reaches the kernel. */
  maxBytes: number;
  pattern?: RegExp;
  /** How the pattern reads to a person: "a name of letters, digits and _". */
  patternRule?: string;
}

export function string(rules: StringRules): Check<string> {
  return (value, field) => {
    if (typeof value !== 'string') throw invalid(field, `must be a string, not ${describe(value)}`);
    if (value.length < (rules.minLength ?? 0)) {
      throw invalid(
        field,
        rules.minLength === 1
          ? 'must not be empty'
          : `must be at least ${rules.minLength} characters`,
      );
    }
    if (value.includes('\0')) throw invalid(field, 'must not contain a NUL character');
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > rules.maxBytes)
      throw invalid(field, `must be at most ${rules.maxBytes} bytes, not ${bytes}`);
    if (rules.pattern && !rules.pattern.test(value)) {
      throw invalid(field, `must be ${rules.patternRule ?? `of the form ${rules.pattern.source}`}`);
    }
    return value;
  };
}

export interface NumberRules {
  min: number;
  max: number;
  integer?: boolean;
  /** The unit, for messages: "bytes", "ms". */
  unit?: string;
}

export function number(rules: NumberRules): Check<number> {
  const unit = rules.unit ? ` ${rules.unit}` : '';
  return (value, field) => {
    if (typeof value !== 'number' || Number.isNaN(value)) {
      throw invalid(
        field,
        `must be a number, not ${typeof value === 'number' ? 'NaN' : describe(value)}`,
      );
    }
    if (rules.integer && !Number.isInteger(value)) throw invalid(field, 'must be a whole number');
    if (!Number.isFinite(value)) throw invalid(field, 'must be finite');
    // The range before exactness: a whole number too large to be exact is out of range, and
    // saying so names the rule the caller broke.
    if (value < rules.min) throw invalid(field, `must be at least ${rules.min}${unit}`);
    if (value > rules.max) throw invalid(field, `must be at most ${rules.max}${unit}`);
    if (rules.integer && !Number.isSafeInteger(value))
      throw invalid(field, `must be at most ${Number.MAX_SAFE_INTEGER}${unit}`);
    return value;
  };
}

export function integer(rules: Omit<NumberRules, 'integer'>): Check<number> {
  return number({ ...rules, integer: true });
}

export const boolean: Check<boolean> = (value, field) => {
  if (typeof value !== 'boolean')
    throw invalid(field, `must be true or false, not ${describe(value)}`);
  return value;
};

export function oneOf<const T extends readonly string[]>(values: T): Check<T[number]> {
  return (value, field) => {
    if (typeof value !== 'string' || !values.includes(value)) {
      throw invalid(field, `must be one of ${values.join(', ')}`);
    }
    return value;
  };
}

export function array<T>(
  item: Check<T>,
  rules: { minItems?: number; maxItems: number },
): Check<T[]> {
  return (value, field) => {
    if (!Array.isArray(value)) throw invalid(field, `must be an array, not ${describe(value)}`);
    if (value.length < (rules.minItems ?? 0)) {
      throw invalid(
        field,
        rules.minItems === 1 ? 'must not be empty' : `must have at least ${rules.minItems} items`,
      );
    }
    if (value.length > rules.maxItems)
      throw invalid(field, `must have at most ${rules.maxItems} items`);
    return value.map((element, index) => item(element, `${field}[${index}]`));
  };
}

function plainObject(value: unknown, field: string): Record<string, unknown> {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Uint8Array
  ) {
    throw invalid(field, `must be an object, not ${describe(value)}`);
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw invalid(field, 'must be a plain object');
  return value as Record<string, unknown>;
}

/** A map from validated keys to validated values (env variables, for example). */
export function record<T>(
  key: Check<string>,
  entry: Check<T>,
  rules: { maxEntries: number },
): Check<Record<string, T>> {
  return (value, field) => {
    const input = plainObject(value, field);
    const keys = Object.keys(input);
    if (keys.length > rules.maxEntries)
      throw invalid(field, `must have at most ${rules.maxEntries} entries`);
    // fromEntries defines own data properties, so even a "__proto__" key stays plain data.
    return Object.fromEntries(
      keys.map((name) => [
        key(name, `${field} key "${name}"`),
        entry(input[name], `${field}.${name}`),
      ]),
    );
  };
}

/** An object with exactly these keys: unknown keys are refused by name. */
export function object<S extends Shape>(shape: S): Check<Infer<S>> {
  return (value, field) => {
    const input = plainObject(value, field);
    const prefix = field ? `${field}.` : '';
    for (const name of Object.keys(input)) {
      if (!Object.hasOwn(shape, name)) throw invalid(`${prefix}${name}`, 'is not a known field');
    }
    const result: Record<string, unknown> = {};
    for (const [name, rule] of Object.entries(shape)) {
      const present = Object.hasOwn(input, name) && input[name] !== undefined;
      if (typeof rule === 'function') {
        if (!present) throw invalid(`${prefix}${name}`, 'is required');
        result[name] = rule(input[name], `${prefix}${name}`);
      } else if (present) {
        result[name] = rule.optional(input[name], `${prefix}${name}`);
      }
    }
    return result as Infer<S>;
  };
}
