// The errors jobctl itself raises: one line for a person, with `detail` shown only with --verbose.
import { EXIT } from './exit-codes.ts';

export class CliError extends Error {
  /** undefined: the command's own failure code (125 for run and start, 1 for the others). */
  readonly exitCode: number | undefined;
  readonly detail: string | undefined;

  constructor(message: string, options: { exitCode?: number; detail?: string } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = options.exitCode;
    this.detail = options.detail;
  }
}

/** A bad flag, value or argument: found before any request is sent; always exit 125. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.refused });
    this.name = 'UsageError';
  }
}
