// Runs a task at most once per interval however often it is asked for, and always once more
// after the last request, never two at a time. Every job's end asks for a retention sweep, and a
// sweep sorts every ended job: at hundreds of job ends a second, one sweep per end would cost
// the executor more than the jobs themselves.

export class CoalescedTask {
  private lastStart = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Asked for while running: run once more when done. */
  private again = false;
  private cancelled = false;

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly intervalMs: number,
  ) {}

  /** Runs the task now, or once the interval since its last start has passed. */
  request(): void {
    if (this.cancelled) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = this.lastStart + this.intervalMs - performance.now();
    if (wait <= 0) {
      void this.run();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, wait).unref();
  }

  /** No run after this one: the owner is closing. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    if (this.cancelled) return;
    this.running = true;
    this.lastStart = performance.now();
    try {
      await this.task();
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.request();
      }
    }
  }
}
