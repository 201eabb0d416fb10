// A run's child runs, read again as child-run events arrive: at most one read in flight and one per second, so a
// map over thousands of items does not read the run once per event.
import { useEffect, useRef, useState } from "react";
import type { Api } from "../api/client";
import type { ChildRun, Run } from "../api/types";

const EVERY_MS = 1000;

/** ``initial`` (read with the run) until child-run events (``childEvents`` counts them) make a newer read. */
export function useChildRuns(api: Api, runId: string, childEvents: number, initial: ChildRun[]): ChildRun[] {
  const [read, setRead] = useState<ChildRun[] | null>(null);
  const [reads, setReads] = useState(0);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  // The event count the last read (or the one under way) covers, and the latest count.
  const covered = useRef(0);
  const latest = useRef(childEvents);
  latest.current = childEvents;
  useEffect(() => {
    if (childEvents <= covered.current || pending.current) return;
    pending.current = setTimeout(() => {
      covered.current = latest.current;
      api
        .get<Run>(`/api/v1/runs/${encodeURIComponent(runId)}`)
        .then((run) => setRead(run.children ?? []))
        .catch(() => {})
        .finally(() => {
          pending.current = null;
          // Events that came in during the read ask for one more.
          setReads((n) => n + 1);
        });
    }, EVERY_MS);
  }, [api, runId, childEvents, reads]);
  useEffect(() => () => void (pending.current && clearTimeout(pending.current)), []);
  // The run read with the page is newer once it lists as many children.
  return read && read.length >= initial.length ? read : initial;
}
