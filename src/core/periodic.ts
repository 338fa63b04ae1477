/**
 * A background job that runs on a timer, one run at a time: the shape shared by the outbox
 * dispatcher, the segment sweep and the journey webhook sender.
 *
 * - `start()` runs at once (work that fell due while stopped goes first), then every `intervalMs`
 *   after the previous run ended; intervalMs 0 leaves it stopped (tests call `runOnce()`).
 * - `runOnce()` runs after any run in flight, never two at a time in this process.
 * - `close()` stops the timer and waits for the run in flight; `closing` tells a long run to end
 *   after its current batch.
 * A failed timed run is logged through `onError` and the timer goes on.
 *
 * @example
 *   const runner = new PeriodicRunner(() => this.#run(), { intervalMs: 500, onError: (err) => log.error({ err }, 'dispatcher run failed') });
 *   runner.start();
 */
export class PeriodicRunner<T> {
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #closing = false;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly run: () => Promise<T>,
    private readonly opts: { intervalMs: number; onError: (err: unknown) => void },
  ) {}

  /** True while `close()` waits: a run should stop after its current batch. */
  get closing(): boolean {
    return this.#closing;
  }

  start(): void {
    if (this.opts.intervalMs <= 0 || !this.#stopped) return;
    this.#stopped = false;
    const tick = (): void => {
      this.#timer = undefined;
      void this.runOnce()
        .catch(this.opts.onError)
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.opts.intervalMs).unref();
        });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  runOnce(): Promise<T> {
    const next = this.#chain.catch(() => undefined).then(() => this.run());
    this.#chain = next;
    return next;
  }

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closing = true;
    try {
      await this.#chain.catch(() => undefined);
    } finally {
      this.#closing = false;
    }
  }
}
