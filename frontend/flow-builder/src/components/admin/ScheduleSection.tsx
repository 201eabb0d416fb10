// A workflow's schedules: create, pause or resume, delete; each with its next fire times and its last runs.
import { useState } from "react";
import { describeError } from "../../api/client";
import type { Schedule } from "../../api/admin";
import { describeTiming, relativeTime } from "../../state/scheduleForm";
import { RecentRuns } from "./RecentRuns";
import { ScheduleForm } from "./ScheduleForm";
import { useAdminApi, useNow, useResource } from "./useAdmin";

export function ScheduleSection({ workflowId, canWrite, refresh }: { workflowId: string; canWrite: boolean; refresh: unknown }) {
  const admin = useAdminApi();
  const schedules = useResource(() => admin.schedules(workflowId), [admin, workflowId, refresh]);
  const [adding, setAdding] = useState(false);
  return (
    <section aria-labelledby="schedules-title" data-testid="schedules">
      <div className="row section-head">
        <h3 id="schedules-title">Schedules</h3>
        {canWrite && <button type="button" aria-expanded={adding} onClick={() => setAdding(!adding)}>{adding ? "Close" : "New schedule"}</button>}
      </div>
      {adding && <ScheduleForm workflowId={workflowId} onCreated={() => (setAdding(false), schedules.reload())} />}
      {schedules.error && <div className="alert" role="alert">{schedules.error}</div>}
      {schedules.data?.items.length === 0 && <p className="muted">No schedules for this workflow.</p>}
      {schedules.data?.items.map((schedule) => (
        <ScheduleCard key={schedule.id} schedule={schedule} canWrite={canWrite} onChange={schedules.reload} />
      ))}
    </section>
  );
}

function ScheduleCard({ schedule, canWrite, onChange }: { schedule: Schedule; canWrite: boolean; onChange: () => void }) {
  const admin = useAdminApi();
  const now = useNow();
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const act = (action: () => Promise<unknown>) => () =>
    void action()
      .then(onChange)
      .catch((exc) => setError(describeError(exc)));
  const timing = describeTiming(schedule);
  return (
    <article className="admin-card" aria-label={`schedule ${timing}`} data-testid={`schedule-${schedule.id}`}>
      <div className="row">
        <b>{timing}</b>
        <span className={`badge ${schedule.paused ? "warn" : "ok"}`} data-testid="schedule-state">{schedule.paused ? "paused" : "active"}</span>
        <span className="muted">overlap: {schedule.overlap}</span>
        <span className="spacer" />
        {canWrite && (
          <button type="button" onClick={act(() => admin.pauseSchedule(schedule.id, !schedule.paused))}>
            {schedule.paused ? "Resume" : "Pause"}
          </button>
        )}
        {canWrite && !confirming && <button type="button" className="danger" onClick={() => setConfirming(true)}>Delete</button>}
        {confirming && (
          <>
            <button type="button" className="danger" onClick={act(() => admin.deleteSchedule(schedule.id))}>Delete this schedule</button>
            <button type="button" onClick={() => setConfirming(false)}>Keep</button>
          </>
        )}
      </div>
      {error && <div className="alert" role="alert">{error}</div>}
      <div className="columns">
        <div>
          <h4>Next fire times</h4>
          {schedule.paused ? (
            <p className="muted">None while paused.</p>
          ) : (
            <ol className="fire-times" data-testid="next-fire-times">
              {schedule.next_fire_times.map((fire) => (
                <li key={fire}><time dateTime={fire}>{new Date(fire).toLocaleString()}</time> <span className="muted">({relativeTime(fire, now)})</span></li>
              ))}
            </ol>
          )}
          <p className="muted">Last fired: {schedule.last_fire_at ? relativeTime(schedule.last_fire_at, now) : "never"}</p>
          <p className="muted">Inputs: <code>{JSON.stringify(schedule.inputs)}</code></p>
        </div>
        <div>
          <h4>Last runs</h4>
          <RecentRuns source="schedule" id={schedule.id} label={`last runs of schedule ${timing}`} testId={`schedule-runs-${schedule.id}`} />
        </div>
      </div>
    </article>
  );
}
