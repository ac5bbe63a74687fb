// Structured logs (pino, JSON lines) on stderr, one logger per process.
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(name: string, level: string): Logger {
  // Synchronous writes: these processes log little, and a line written just before a crash or an
  // exit must not be lost.
  return pino({ name, level }, pino.destination({ fd: 2, sync: true }));
}
