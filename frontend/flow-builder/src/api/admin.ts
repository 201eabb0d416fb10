// Shapes and calls of the admin and integration APIs (schedules, triggers, secrets, notifications, API keys, /me);
// only the fields the admin pages read are typed. Docs: docs/schedules.md, triggers.md, notifications.md, security.md.
import type { Api } from "./client";
import type { Page, RunStatus } from "./types";

export type Role = "admin" | "editor" | "approver" | "viewer";

export type Me = { key_id: string; name: string; owner: string | null; tenant_id: string; role: Role; bootstrap: boolean };

export type Schedule = {
  id: string;
  workflow_id: string;
  version: number | null;
  inputs: Record<string, unknown>;
  cron: string | null;
  timezone: string;
  interval_s: number | null;
  overlap: "skip" | "allow";
  catchup: "none" | "last" | "all";
  paused: boolean;
  next_fire_at: string;
  last_fire_at: string | null;
  next_fire_times: string[];
  created_at: string;
};

export type ScheduleBody = {
  workflow: string;
  cron?: string;
  timezone?: string;
  interval_s?: number;
  inputs: Record<string, unknown>;
  overlap: "skip" | "allow";
  paused: boolean;
};

export type TriggerSecret = { id: string; created_at: string };

export type Trigger = {
  id: string;
  name: string;
  workflow_id: string;
  auth: "hmac" | "bearer";
  hook_path: string;
  secrets: TriggerSecret[];
  rate_per_min: number;
  paused: boolean;
  created_at: string;
};

/** A trigger as created or rotated: the one answer that carries a secret. */
export type TriggerWithSecret = Trigger & { secret: string; secret_id: string };

export type SourceRun = { id: string; status: RunStatus; version: number; created_at: string; ended_at: string | null };

export type SecretInfo = { name: string; created_at: string; updated_at: string; updated_by: string | null };

export type NotificationEvent = "approval_requested" | "approval_decided" | "run_failed" | "run_timed_out" | "run_succeeded";

export const NOTIFICATION_EVENTS: NotificationEvent[] = [
  "run_failed",
  "run_timed_out",
  "run_succeeded",
  "approval_requested",
  "approval_decided",
];

export type Subscription = {
  id: string;
  workflow_id: string | null;
  events: NotificationEvent[];
  channel: "webhook" | "email";
  target: string;
  format: "json" | "slack";
  paused: boolean;
  created_at: string;
  /** Only in the answer to the creation of a webhook subscription. */
  secret?: string | null;
};

export type SubscriptionBody = {
  channel: "webhook" | "email";
  url?: string;
  address?: string;
  events: NotificationEvent[];
  format: "json" | "slack";
  workflow_id: string | null;
};

export type Delivery = {
  id: number;
  event_id: string;
  event_type: string;
  run_id: string | null;
  attempt: number;
  status: "delivered" | "retrying" | "failed";
  response_code: number | null;
  error: string | null;
  created_at: string;
};

export type ApiKey = {
  id: string;
  name: string;
  owner: string;
  role: Role;
  tenant_id: string;
  created_at: string;
  revoked_at: string | null;
};

/** A key as created: the one answer that carries the key itself. */
export type NewApiKey = ApiKey & { key: string };

const path = (...parts: string[]) => parts.map(encodeURIComponent).join("/");

/** The admin and integration endpoints over one ``Api``. */
export class AdminApi {
  constructor(readonly api: Api) {}

  me = () => this.api.get<Me>("/api/v1/me");

  schedules = (workflowId: string) => this.api.get<Page<Schedule>>(`/api/v1/schedules?workflow=${encodeURIComponent(workflowId)}`);
  createSchedule = (body: ScheduleBody) => this.api.post<Schedule>("/api/v1/schedules", body);
  pauseSchedule = (id: string, paused: boolean) => this.api.request<Schedule>("PATCH", `/api/v1/schedules/${path(id)}`, { paused });
  deleteSchedule = (id: string) => this.api.request<null>("DELETE", `/api/v1/schedules/${path(id)}`);
  scheduleRuns = (id: string) => this.api.get<Page<SourceRun>>(`/api/v1/schedules/${path(id)}/runs?limit=5`);

  triggers = (workflowId: string) => this.api.get<Page<Trigger>>(`/api/v1/triggers?workflow=${encodeURIComponent(workflowId)}`);
  createTrigger = (body: { workflow: string; name?: string; auth: "hmac" | "bearer" }) =>
    this.api.post<TriggerWithSecret>("/api/v1/triggers", body);
  pauseTrigger = (id: string, paused: boolean) => this.api.request<Trigger>("PATCH", `/api/v1/triggers/${path(id)}`, { paused });
  rotateTrigger = (id: string) => this.api.post<TriggerWithSecret>(`/api/v1/triggers/${path(id)}/rotate`);
  retireTrigger = (id: string) => this.api.post<Trigger>(`/api/v1/triggers/${path(id)}/retire`);
  deleteTrigger = (id: string) => this.api.request<null>("DELETE", `/api/v1/triggers/${path(id)}`);
  triggerRuns = (id: string) => this.api.get<Page<SourceRun>>(`/api/v1/triggers/${path(id)}/runs?limit=5`);

  secrets = () => this.api.get<Page<SecretInfo>>("/api/v1/secrets");
  putSecret = (name: string, value: string) => this.api.put<SecretInfo>(`/api/v1/secrets/${path(name)}`, { value });
  deleteSecret = (name: string) => this.api.request<null>("DELETE", `/api/v1/secrets/${path(name)}`);
  reencryptSecrets = () => this.api.post<{ rotated: number }>("/api/v1/secrets/rotate");

  subscriptions = () => this.api.get<Page<Subscription>>("/api/v1/notifications/subscriptions");
  createSubscription = (body: SubscriptionBody) => this.api.post<Subscription>("/api/v1/notifications/subscriptions", body);
  pauseSubscription = (id: string, paused: boolean) =>
    this.api.request<Subscription>("PATCH", `/api/v1/notifications/subscriptions/${path(id)}`, { paused });
  deleteSubscription = (id: string) => this.api.request<null>("DELETE", `/api/v1/notifications/subscriptions/${path(id)}`);
  deliveries = (id: string) => this.api.get<Page<Delivery>>(`/api/v1/notifications/subscriptions/${path(id)}/deliveries?limit=50`);
  sendTest = (id: string) => this.api.post<{ event_id: string }>(`/api/v1/notifications/subscriptions/${path(id)}/test`);

  keys = () => this.api.get<Page<ApiKey>>("/api/v1/api-keys");
  createKey = (body: { name: string; role: Role; owner?: string }) => this.api.post<NewApiKey>("/api/v1/api-keys", body);
  revokeKey = (id: string) => this.api.request<null>("DELETE", `/api/v1/api-keys/${path(id)}`);
}
