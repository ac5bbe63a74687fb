// Readiness for systemd's Type=notify units: the unit counts as started, and units ordered after
// it (and queued jobs such as a reload) go ahead, only once the service says so.
import { execFile } from 'node:child_process';
import type { Logger } from './logger.ts';

/**
 * Under systemd (Type=notify, NotifyAccess=all) tells it the service is ready. Node cannot send to
 * a datagram Unix socket, so systemd's own tool does it; elsewhere this does nothing.
 */
export function notifySystemdReady(logger: Logger): void {
  if (!process.env.NOTIFY_SOCKET) return;
  execFile('systemd-notify', ['--ready', `--pid=${process.pid}`], (error) => {
    if (error) logger.warn({ err: error.message }, 'cannot notify systemd of readiness');
  });
}
