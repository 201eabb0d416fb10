// In-page figures of the UI benchmark: long tasks (PerformanceObserver) and the gaps between animation frames
// while something is measured, and a wait for a condition checked once per frame.
import type { Page } from "playwright-core";

export type Responsiveness = { longTasks: number; longTaskMs: number; frames: number; frameP95Ms: number; frameMaxMs: number };

/** Starts recording long tasks and frame gaps in ``page``; ``stopProbe`` returns them. */
export async function startProbe(page: Page): Promise<void> {
  await page.evaluate(() => {
    const probe = { tasks: [] as number[], gaps: [] as number[], running: true, last: performance.now() };
    const observer = new PerformanceObserver((list) => list.getEntries().forEach((entry) => probe.tasks.push(entry.duration)));
    observer.observe({ type: "longtask" });
    const frame = (now: number) => {
      probe.gaps.push(now - probe.last);
      probe.last = now;
      if (probe.running) requestAnimationFrame(frame);
      else observer.disconnect();
    };
    requestAnimationFrame(frame);
    (window as unknown as { __probe: typeof probe }).__probe = probe;
  });
}

export async function stopProbe(page: Page): Promise<Responsiveness> {
  return page.evaluate(async () => {
    const probe = (window as unknown as { __probe: { tasks: number[]; gaps: number[]; running: boolean } }).__probe;
    // The observer reports a long task after it ended: one more frame lets the last one in.
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    probe.running = false;
    const gaps = [...probe.gaps].sort((a, b) => a - b);
    const round = (v: number) => Math.round(v * 10) / 10;
    return {
      longTasks: probe.tasks.length,
      longTaskMs: round(probe.tasks.reduce((a, b) => a + b, 0)),
      frames: gaps.length,
      frameP95Ms: round(gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.95))] ?? 0),
      frameMaxMs: round(gaps[gaps.length - 1] ?? 0),
    };
  });
}

export type Until = {
  /** Set as location.hash when the clock starts (navigating within the app). */
  hash?: string;
  selector: string;
  /** At least this many elements match ``selector``, none of them hidden by React Flow (unmeasured). */
  count?: number;
  /** The first match's text contains this. */
  text?: string;
};

/** Milliseconds (page clock) from now until ``until`` holds at an animation frame; no eval (the app's CSP). */
export async function framesUntil(page: Page, until: Until): Promise<number> {
  return page.evaluate(async ({ hash, selector, count, text }) => {
    const holds = () => {
      const found = document.querySelectorAll<HTMLElement>(selector);
      if (count !== undefined) {
        if (found.length < count) return false;
        for (const element of found) if (element.style.visibility === "hidden") return false;
      }
      return text === undefined || (found[0]?.textContent ?? "").includes(text);
    };
    const started = performance.now();
    if (hash !== undefined) location.hash = hash;
    while (!holds()) {
      if (performance.now() - started > 120_000) throw new Error(`not within 120 s: ${selector} ${count ?? ""} ${text ?? ""}`);
      await new Promise((r) => requestAnimationFrame(r));
    }
    return performance.now() - started;
  }, until);
}
