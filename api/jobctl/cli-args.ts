// What jobctl does to its argv before cac sees it, and how commands read cac's result.
//
// cac parses with mri, which turns any value that looks like a number into one ("0x10" → 16,
// "1e3" → 1000, a job id of digits → a float), and which, for a boolean flag, converts the word
// after it the same way. Values must reach the flag parsers exactly as typed, so each value and
// each positional argument is marked with a leading NUL (no real argument can contain one), which
// makes it "not a number" to mri; `unmark` removes the mark after parsing.
//
// The job's argv is never parsed: it is everything after `--`, or, for run and start, everything
// from the first argument that is not a flag (so `jobctl run ls -la` runs `ls -la`, as Docker does).

const MARK = '\u0000';

export interface ArgvGrammar {
  /** Every spelling of a flag that takes a value ("-e", "--env") → the spelling cac gets. */
  valueFlags: ReadonlyMap<string, string>;
  /** Commands whose first positional argument starts the job's argv. */
  jobCommands: ReadonlySet<string>;
}

export function protectArgv(args: readonly string[], grammar: ArgvGrammar): string[] {
  const out: string[] = [];
  let command: string | undefined;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    if (arg === '--') {
      out.push(...args.slice(index));
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
      const name = equals < 0 ? arg : arg.slice(0, equals);
      const long = grammar.valueFlags.get(name);
      const short = arg.startsWith('--') ? undefined : grammar.valueFlags.get(arg.slice(0, 2));
      if (long !== undefined && equals >= 0) {
        out.push(long, MARK + arg.slice(equals + 1));
      } else if (long !== undefined) {
        out.push(long);
        // Like getopt: a flag that takes a value takes the next word, whatever it looks like.
        if (index + 1 < args.length) out.push(MARK + (args[++index] ?? ''));
      } else if (short !== undefined) {
        out.push(short, MARK + arg.slice(2).replace(/^=/, '')); // -wDIR, -e=NAME=VALUE
      } else {
        out.push(arg);
      }
      continue;
    }
    if (command === undefined) {
      command = arg;
      out.push(arg);
    } else if (grammar.jobCommands.has(command)) {
      out.push('--', ...args.slice(index));
      break;
    } else {
      out.push(MARK + arg);
    }
  }
  return out;
}

/** Removes protectArgv's marks from cac's parsed args or option values. */
export function unmark<T>(value: T): T {
  if (typeof value === 'string') return (value.startsWith(MARK) ? value.slice(1) : value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => unmark(item)) as T;
  return value;
}

export type ParsedOptions = Readonly<Record<string, unknown>>;

/** A flag's value; given twice, the last one counts (as with Docker). */
export function lastString(options: ParsedOptions, key: string): string | undefined {
  const value = options[key];
  const last: unknown = Array.isArray(value) ? value.at(-1) : value;
  return typeof last === 'string' ? last : undefined;
}

/** Every value of a repeatable flag (--env). */
export function allStrings(options: ParsedOptions, key: string): string[] {
  const value = options[key];
  const values: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return values.filter((item): item is string => typeof item === 'string');
}

export function isOn(options: ParsedOptions, key: string): boolean {
  const value = options[key];
  return Array.isArray(value) ? value.at(-1) === true : value === true;
}

/** cac's option key for a flag: "--pids-limit" → "pidsLimit". */
export function optionKey(flag: string): string {
  return flag.replace(/^-+/, '').replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}
