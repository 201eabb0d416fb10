// The tenant's runs, newest first: filtered and paged by the API, kept live from the tenant feed.
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError } from "../api/client";
import type { Page, RunEvent } from "../api/types";
import { useTenant, useTenantEvents } from "../net/tenant";
import { useSession } from "../session";
import { applyToRows, filtersToQuery, hasFilters, NO_FILTERS, type RunFilters, type RunRow } from "../state/runFilters";
import { RunFiltersForm } from "./RunFiltersForm";

// A burst of new runs reads the first page again at most this often.
const REFRESH_MS = 1000;

export function RunsPage() {
  const { api } = useSession();
  const tenant = useTenant(api);
  const [filters, setFilters] = useState<RunFilters>(NO_FILTERS);
  // Cursors of the pages before the shown one: empty on the first page.
  const [cursors, setCursors] = useState<(string | null)[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [page, setPage] = useState<Page<RunRow> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [newRuns, setNewRuns] = useState(0);
  const [reads, setReads] = useState(0);
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onFirstPage = cursors.length === 0;

  useEffect(() => {
    let cancelled = false;
    api
      .get<Page<RunRow>>(`/api/v1/runs?${filtersToQuery(filters, cursor)}`)
      .then((read) => {
        if (cancelled) return;
        setPage(read);
        setError(null);
      })
      .catch((e) => !cancelled && setError(describeError(e)));
    return () => {
      cancelled = true;
    };
  }, [api, filters, cursor, reads]);

  useEffect(() => () => void (refreshTimer.current && clearTimeout(refreshTimer.current)), []);

  const onEvents = useCallback(
    (events: RunEvent[]) => {
      let unknownStarts = 0;
      setPage((current) => {
        if (!current) return current;
        let rows = current.items;
        for (const event of events) {
          const applied = applyToRows(rows, event);
          rows = applied.rows;
          if (!applied.known && event.type === "run_started") unknownStarts += 1;
        }
        return rows === current.items ? current : { ...current, items: rows };
      });
      if (!unknownStarts) return;
      if (!onFirstPage) {
        setNewRuns((n) => n + unknownStarts);
        return;
      }
      // The API filters: whether a new run belongs on this page is its answer, read again shortly.
      refreshTimer.current ??= setTimeout(() => {
        refreshTimer.current = null;
        setReads((n) => n + 1);
      }, REFRESH_MS);
    },
    [onFirstPage],
  );
  useTenantEvents(api, onEvents);

  const change = useCallback((next: RunFilters) => {
    setFilters(next);
    setCursors([]);
    setCursor(null);
    setNewRuns(0);
  }, []);
  const older = () => {
    if (!page?.next_cursor) return;
    setCursors([...cursors, cursor]);
    setCursor(page.next_cursor);
  };
  const newer = () => {
    setCursor(cursors[cursors.length - 1] ?? null);
    setCursors(cursors.slice(0, -1));
  };
  const first = () => {
    setCursors([]);
    setCursor(null);
    setNewRuns(0);
    setReads((n) => n + 1);
  };

  const rows = page?.items ?? [];
  return (
    <div className="content">
      <h2>
        Runs <span className="muted">· live ({tenant.feed})</span>
      </h2>
      <RunFiltersForm filters={filters} onChange={change} />
      {error && <div className="alert" role="alert">{error}</div>}
      {newRuns > 0 && (
        <div className="notice" role="status" data-testid="new-runs">
          {newRuns} new run{newRuns > 1 ? "s" : ""} since this page was read.{" "}
          <button onClick={first}>Show the newest</button>
        </div>
      )}
      <table className="list" data-testid="runs-list">
        <caption className="sr-only">Runs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">run</th>
            <th scope="col">workflow</th>
            <th scope="col">version</th>
            <th scope="col">status</th>
            <th scope="col">started by</th>
            <th scope="col">created</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((run) => (
            <tr key={run.id} data-testid={`run-row-${run.id}`}>
              <td><a href={`#/runs/${run.id}`}><code>{run.id}</code></a></td>
              <td>{run.workflow_name}</td>
              <td>{run.version || ""}</td>
              <td className={`status-${run.status}`}><span className="pill" data-testid="run-row-status">{run.status}</span></td>
              <td>{origin(run)}</td>
              <td className="muted">{new Date(run.created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && rows.length === 0 && (
        <p className="muted" data-testid="runs-empty">
          {hasFilters(filters) ? "No run matches these filters." : "No runs yet: build a workflow and press Run."}
        </p>
      )}
      <nav className="row pager" aria-label="pages of runs">
        <button onClick={newer} disabled={onFirstPage} data-testid="runs-newer">Newer</button>
        <span className="muted" data-testid="runs-page">page {cursors.length + 1}</span>
        <button onClick={older} disabled={!page?.next_cursor} data-testid="runs-older">Older</button>
      </nav>
    </div>
  );
}

function origin(run: RunRow): React.ReactNode {
  if (run.schedule_id) return <span>schedule <code>{run.schedule_id}</code></span>;
  if (run.trigger_id) return <span>trigger <code>{run.trigger_id}</code></span>;
  if (run.parent_run_id) return <span>run <a href={`#/runs/${run.parent_run_id}`}><code>{run.parent_run_id.slice(0, 12)}</code></a></span>;
  return run.started_by ? <code>{run.started_by}</code> : "";
}
