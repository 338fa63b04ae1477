import { describe, expect, it } from 'vitest';
import { PeriodicRunner } from './periodic.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('PeriodicRunner', () => {
  it('never runs twice at a time: runOnce waits for the run in flight', async () => {
    let running = 0;
    let most = 0;
    const r = new PeriodicRunner(
      async () => {
        running++;
        most = Math.max(most, running);
        await tick(5);
        running--;
        return most;
      },
      { intervalMs: 0, onError: () => undefined },
    );
    await Promise.all([r.runOnce(), r.runOnce(), r.runOnce()]);
    expect(most).toBe(1);
  });

  it('does nothing on start with interval 0, and runs at once then on its interval otherwise; errors go to onError and it goes on', async () => {
    let runs = 0;
    const errors: unknown[] = [];
    const idle = new PeriodicRunner(async () => ++runs, { intervalMs: 0, onError: (e) => errors.push(e) });
    idle.start();
    await tick(20);
    expect(runs).toBe(0);

    const r = new PeriodicRunner(
      async () => {
        runs++;
        if (runs === 1) throw new Error('first run fails');
        return runs;
      },
      { intervalMs: 5, onError: (e) => errors.push(e) },
    );
    r.start();
    for (let i = 0; i < 100 && runs < 3; i++) await tick(5);
    await r.close();
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(errors).toHaveLength(1);
    const after = runs;
    await tick(20);
    expect(runs).toBe(after);
  });

  it('tells a long run to stop while close() waits for it', async () => {
    let batches = 0;
    let release!: () => void;
    const started = new Promise<void>((r) => (release = r));
    const r: PeriodicRunner<number> = new PeriodicRunner(
      async () => {
        while (!r.closing && batches < 1000) {
          batches++;
          if (batches === 1) release();
          await tick(1);
        }
        return batches;
      },
      { intervalMs: 0, onError: () => undefined },
    );
    const run = r.runOnce();
    await started;
    await r.close();
    expect(await run).toBeLessThan(1000);
    expect(r.closing).toBe(false);
  });
});
