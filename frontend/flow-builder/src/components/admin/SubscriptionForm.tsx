// Subscribe to run and approval events: a webhook (its signing secret is shown once) or an e-mail address.
import { useState } from "react";
import { describeError } from "../../api/client";
import { NOTIFICATION_EVENTS, type NotificationEvent, type Subscription, type SubscriptionBody } from "../../api/admin";
import type { Workflow } from "../../api/types";
import { Field } from "./Field";

export function SubscriptionForm({ workflows, create }: { workflows: Workflow[]; create: (body: SubscriptionBody) => Promise<Subscription> }) {
  const [channel, setChannel] = useState<"webhook" | "email">("webhook");
  const [target, setTarget] = useState("");
  const [events, setEvents] = useState<Set<NotificationEvent>>(new Set(["run_failed"]));
  const [format, setFormat] = useState<"json" | "slack">("json");
  const [workflowId, setWorkflowId] = useState("");
  const [error, setError] = useState<string | null>(null);
  const toggle = (event: NotificationEvent, on: boolean) =>
    setEvents((current) => {
      const next = new Set(current);
      if (on) next.add(event);
      else next.delete(event);
      return next;
    });
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    const body: SubscriptionBody = {
      channel,
      events: NOTIFICATION_EVENTS.filter((ev) => events.has(ev)),
      format,
      workflow_id: workflowId || null,
      ...(channel === "webhook" ? { url: target.trim() } : { address: target.trim() }),
    };
    try {
      await create(body);
      setTarget("");
    } catch (exc) {
      setError(describeError(exc));
    }
  };
  return (
    <form className="admin-form" onSubmit={submit} aria-label="new subscription" data-testid="subscription-form">
      <div className="row">
        <Field id="sub-channel" label="Channel">
          <select value={channel} onChange={(e) => setChannel(e.target.value as "webhook" | "email")}>
            <option value="webhook">webhook</option>
            <option value="email">e-mail</option>
          </select>
        </Field>
        <Field id="sub-target" label={channel === "webhook" ? "Webhook URL" : "E-mail address"}>
          <input type={channel === "webhook" ? "url" : "email"} value={target} onChange={(e) => setTarget(e.target.value)} required />
        </Field>
        {channel === "webhook" && (
          <Field id="sub-format" label="Format">
            <select value={format} onChange={(e) => setFormat(e.target.value as "json" | "slack")}>
              <option value="json">JSON event</option>
              <option value="slack">Slack text</option>
            </select>
          </Field>
        )}
        <Field id="sub-workflow" label="Workflow">
          <select value={workflowId} onChange={(e) => setWorkflowId(e.target.value)}>
            <option value="">every workflow</option>
            {workflows.map((w) => (
              <option key={w.id} value={w.id}>{w.name}</option>
            ))}
          </select>
        </Field>
      </div>
      <fieldset>
        <legend>Events</legend>
        {NOTIFICATION_EVENTS.map((event) => (
          <label key={event} className="inline">
            <input type="checkbox" checked={events.has(event)} onChange={(e) => toggle(event, e.target.checked)} /> {event.replaceAll("_", " ")}
          </label>
        ))}
      </fieldset>
      {error && <div className="alert" role="alert">{error}</div>}
      <button className="primary" type="submit" disabled={events.size === 0}>Subscribe</button>
    </form>
  );
}
