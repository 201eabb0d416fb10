// The runs page's filters: every control labelled; typed text applies after a pause, choices at once.
import { useEffect, useState } from "react";
import type { Page, RunStatus } from "../api/types";
import { useSession } from "../session";
import { NO_FILTERS, type RunFilters, type RunSource } from "../state/runFilters";

const STATUSES: RunStatus[] = ["queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"];
const TYPING_MS = 300;

type Named = { id: string; name?: string | null };
type Me = { key_id: string; role: string };
type Choices = { workflows: string[]; keys: Named[]; schedules: Named[]; triggers: Named[]; me: Me | null };

/** What the selects offer; lists the key may not read (API keys are admin-only) stay empty. */
function useChoices(): Choices {
  const { api } = useSession();
  const [choices, setChoices] = useState<Choices>({ workflows: [], keys: [], schedules: [], triggers: [], me: null });
  useEffect(() => {
    let cancelled = false;
    const items = <T,>(path: string) => api.get<Page<T>>(path).then((p) => p.items).catch(() => [] as T[]);
    void (async () => {
      const me = await api.get<Me>("/api/v1/me").catch(() => null);
      const [workflows, keys, schedules, triggers] = await Promise.all([
        items<{ name: string }>("/api/v1/workflows?limit=200"),
        me?.role === "admin" ? items<Named>("/api/v1/api-keys") : Promise.resolve([] as Named[]),
        items<Named>("/api/v1/schedules"),
        items<Named>("/api/v1/triggers"),
      ]);
      if (!cancelled) setChoices({ workflows: workflows.map((w) => w.name), keys, schedules, triggers, me });
    })();
    return () => {
      cancelled = true;
    };
  }, [api]);
  return choices;
}

export function RunFiltersForm({ filters, onChange }: { filters: RunFilters; onChange: (filters: RunFilters) => void }) {
  const choices = useChoices();
  const [typed, setTyped] = useState({ search: filters.search, workflow: filters.workflow });
  useEffect(() => {
    if (typed.search === filters.search && typed.workflow === filters.workflow) return;
    const timer = setTimeout(() => onChange({ ...filters, ...typed }), TYPING_MS);
    return () => clearTimeout(timer);
  }, [typed, filters, onChange]);
  const set = <K extends keyof RunFilters>(name: K, value: RunFilters[K]) => onChange({ ...filters, [name]: value });
  const toggle = (status: RunStatus, on: boolean) =>
    set("statuses", on ? [...filters.statuses, status] : filters.statuses.filter((s) => s !== status));
  const keyName = (k: Named) => (k.id === choices.me?.key_id ? `me (${k.name ?? k.id})` : k.name ?? k.id);
  return (
    <form className="filters" role="search" aria-label="filter runs" onSubmit={(e) => e.preventDefault()}>
      <div className="field">
        <label htmlFor="runs-search">Run id</label>
        <input id="runs-search" placeholder="starts with…" value={typed.search} onChange={(e) => setTyped({ ...typed, search: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="runs-workflow">Workflow</label>
        <input id="runs-workflow" list="runs-workflows" placeholder="any" value={typed.workflow} onChange={(e) => setTyped({ ...typed, workflow: e.target.value })} />
        <datalist id="runs-workflows">
          {choices.workflows.map((name) => <option key={name} value={name} />)}
        </datalist>
      </div>
      <div className="field">
        <label htmlFor="runs-from">Created from</label>
        <input id="runs-from" type="datetime-local" value={filters.from} onChange={(e) => set("from", e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="runs-to">Created before</label>
        <input id="runs-to" type="datetime-local" value={filters.to} onChange={(e) => set("to", e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="runs-started-by">Started by</label>
        <select id="runs-started-by" value={filters.startedBy} onChange={(e) => set("startedBy", e.target.value)}>
          <option value="">anyone</option>
          {choices.me && !choices.keys.some((k) => k.id === choices.me?.key_id) && <option value={choices.me.key_id}>me</option>}
          {choices.keys.map((k) => <option key={k.id} value={k.id}>{keyName(k)}</option>)}
        </select>
      </div>
      <div className="field">
        <label htmlFor="runs-source">Started through</label>
        <select id="runs-source" value={filters.source} onChange={(e) => set("source", e.target.value as RunSource)}>
          <option value="">anything</option>
          <option value="api">the API or the UI</option>
          <option value="schedule">a schedule</option>
          <option value="trigger">a webhook trigger</option>
          <option value="child">a parent run</option>
        </select>
      </div>
      <div className="field">
        <label htmlFor="runs-schedule">Schedule</label>
        <select id="runs-schedule" value={filters.scheduleId} onChange={(e) => set("scheduleId", e.target.value)}>
          <option value="">any</option>
          {choices.schedules.map((s) => <option key={s.id} value={s.id}>{s.name ?? s.id}</option>)}
        </select>
      </div>
      <div className="field">
        <label htmlFor="runs-trigger">Trigger</label>
        <select id="runs-trigger" value={filters.triggerId} onChange={(e) => set("triggerId", e.target.value)}>
          <option value="">any</option>
          {choices.triggers.map((t) => <option key={t.id} value={t.id}>{t.name ?? t.id}</option>)}
        </select>
      </div>
      <fieldset className="statuses">
        <legend>Status</legend>
        {STATUSES.map((status) => (
          <label key={status}>
            <input type="checkbox" checked={filters.statuses.includes(status)} onChange={(e) => toggle(status, e.target.checked)} /> {status}
          </label>
        ))}
      </fieldset>
      <button
        type="button"
        onClick={() => {
          setTyped({ search: "", workflow: "" });
          onChange(NO_FILTERS);
        }}
      >
        Clear filters
      </button>
    </form>
  );
}
