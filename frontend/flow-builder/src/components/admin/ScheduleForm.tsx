// Create a schedule of one workflow: an interval or a cron expression in a time zone, inputs, overlap, paused.
import { useState } from "react";
import { ApiError, describeError } from "../../api/client";
import type { Schedule } from "../../api/admin";
import { apiFieldErrors, EMPTY_DRAFT, scheduleBody, type FieldErrors, type ScheduleDraft } from "../../state/scheduleForm";
import { Field } from "./Field";
import { useAdminApi } from "./useAdmin";

export function ScheduleForm({ workflowId, onCreated }: { workflowId: string; onCreated: (schedule: Schedule) => void }) {
  const admin = useAdminApi();
  const [draft, setDraft] = useState<ScheduleDraft>(EMPTY_DRAFT);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof ScheduleDraft>(key: K, value: ScheduleDraft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const parsed = scheduleBody(workflowId, draft);
    if (!parsed.ok) return setErrors(parsed.errors);
    setBusy(true);
    setErrors({});
    try {
      onCreated(await admin.createSchedule(parsed.value));
      setDraft(EMPTY_DRAFT);
    } catch (exc) {
      const pinned = exc instanceof ApiError && exc.status === 422 ? apiFieldErrors(exc.details) : {};
      setErrors(Object.keys(pinned).length ? pinned : { form: describeError(exc) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="admin-form" onSubmit={submit} aria-label="new schedule" data-testid="schedule-form">
      <fieldset>
        <legend>Fires</legend>
        <label className="inline"><input type="radio" name="sched-mode" checked={draft.mode === "interval"} onChange={() => set("mode", "interval")} /> at an interval</label>
        <label className="inline"><input type="radio" name="sched-mode" checked={draft.mode === "cron"} onChange={() => set("mode", "cron")} /> on a cron expression</label>
      </fieldset>
      {draft.mode === "interval" ? (
        <div className="row">
          <Field id="sched-every" label="Every" error={errors.every}>
            <input inputMode="numeric" value={draft.every} onChange={(e) => set("every", e.target.value)} />
          </Field>
          <Field id="sched-unit" label="Unit">
            <select value={draft.unit} onChange={(e) => set("unit", e.target.value as ScheduleDraft["unit"])}>
              <option value="s">seconds</option>
              <option value="min">minutes</option>
              <option value="h">hours</option>
            </select>
          </Field>
        </div>
      ) : (
        <div className="row">
          <Field id="sched-cron" label="Cron expression" error={errors.cron} hint="minute hour day month weekday (a 6th field: seconds)">
            <input value={draft.cron} onChange={(e) => set("cron", e.target.value)} />
          </Field>
          <Field id="sched-timezone" label="Time zone" error={errors.timezone}>
            <input value={draft.timezone} onChange={(e) => set("timezone", e.target.value)} />
          </Field>
        </div>
      )}
      <Field id="sched-inputs" label="Run inputs (JSON)" error={errors.inputs}>
        <textarea rows={2} value={draft.inputs} onChange={(e) => set("inputs", e.target.value)} />
      </Field>
      <div className="row">
        <Field id="sched-overlap" label="While a run of it is live" error={errors.overlap}>
          <select value={draft.overlap} onChange={(e) => set("overlap", e.target.value as ScheduleDraft["overlap"])}>
            <option value="skip">skip the fire time</option>
            <option value="allow">start another run</option>
          </select>
        </Field>
        <label className="inline"><input type="checkbox" checked={draft.paused} onChange={(e) => set("paused", e.target.checked)} /> create paused</label>
      </div>
      {errors.form && <div className="alert" role="alert">{errors.form}</div>}
      <button className="primary" type="submit" disabled={busy}>{busy ? "Creating…" : "Create schedule"}</button>
    </form>
  );
}
