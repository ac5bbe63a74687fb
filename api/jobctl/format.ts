// Text for people: sizes, durations, times, command lines and tables. Pure functions.

const BINARY_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 1536 → "1.5KiB"; binary units, as Docker prints memory. */
export function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${oneDecimal(value)}${BINARY_UNITS[unit]}`;
}

function oneDecimal(value: number): string {
  return value >= 100 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, '');
}

/** 850 → "850ms", 12_300 → "12.3s", 245_000 → "4m05s", 7_380_000 → "2h03m", days → "3d04h". */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${oneDecimal(ms / 1000)}s`;
  const seconds = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  if (seconds < 86_400)
    return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${two(Math.floor(seconds / 3600) % 24)}h`;
}

/** How long ago, in Docker's words: "5 seconds ago", "About an hour ago". */
export function timeAgo(then: Date, now: Date): string {
  const seconds = Math.max(0, (now.getTime() - then.getTime()) / 1000);
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(seconds / 3600);
  let span: string;
  if (seconds < 1) span = 'Less than a second';
  else if (Math.floor(seconds) === 1) span = '1 second';
  else if (seconds < 60) span = `${Math.floor(seconds)} seconds`;
  else if (minutes === 1) span = 'About a minute';
  else if (minutes < 60) span = `${minutes} minutes`;
  else if (hours === 1) span = 'About an hour';
  else if (hours < 48) span = `${hours} hours`;
  else if (hours < 24 * 14) span = `${Math.floor(hours / 24)} days`;
  else if (hours < 24 * 60) span = `${Math.floor(hours / 24 / 7)} weeks`;
  else if (hours < 24 * 365 * 2) span = `${Math.floor(hours / 24 / 30)} months`;
  else span = `${Math.floor(hours / 24 / 365)} years`;
  return `${span} ago`;
}

/** Local time as "2025-01-31 14:05:09". */
export function localTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`
  );
}

const SAFE_WORD = /^[A-Za-z0-9_\-+=.,/:@%^]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** One argument as a POSIX shell would need it quoted (display only: jobs never see a shell). */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  if (CONTROL.test(word)) {
    const escaped = [...word]
      .map((char) => {
        const code = char.codePointAt(0) ?? 0;
        if (char === '\\' || char === "'") return `\\${char}`;
        if (char === '\n') return '\\n';
        if (char === '\t') return '\\t';
        return code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : char;
      })
      .join('');
    return `$'${escaped}'`;
  }
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** At most `max` characters, the cut marked with "…". */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** Columns separated by three spaces, like Docker's tables; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const width = (text: string) => [...text].length;
  const widths = headers.map((header, column) =>
    Math.max(width(header), ...rows.map((row) => width(row[column] ?? ''))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell + ' '.repeat((widths[column] ?? 0) - width(cell)),
      )
      .join('   ')
      .trimEnd();
  return [headers, ...rows].map(line).join('\n');
}
