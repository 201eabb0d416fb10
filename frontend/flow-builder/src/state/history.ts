// Undo/redo over immutable snapshots: a past, a present and a future. Edits that follow each other closely under
// the same key (typing into one field) merge into one step, so one undo takes back a word, not a letter.

export type History<T> = {
  past: T[];
  present: T;
  future: T[];
  /** What the last recorded edit was, and when: the next edit with the same key within the window merges. */
  lastKey: string | null;
  lastAt: number;
};

export type RecordOptions = {
  /** Edits under the same non-null key within ``mergeWindowMs`` of each other are one step. */
  key?: string | null;
  now?: number;
  mergeWindowMs?: number;
  /** Steps kept in the past; older ones are dropped. */
  limit?: number;
};

export const DEFAULT_LIMIT = 200;
export const DEFAULT_MERGE_WINDOW_MS = 1000;

export function startHistory<T>(present: T): History<T> {
  return { past: [], present, future: [], lastKey: null, lastAt: 0 };
}

/** ``history`` with ``next`` as its present; the future is dropped, as in every editor. */
export function record<T>(history: History<T>, next: T, options: RecordOptions = {}): History<T> {
  const { key = null, now = Date.now(), mergeWindowMs = DEFAULT_MERGE_WINDOW_MS, limit = DEFAULT_LIMIT } = options;
  if (next === history.present) return history;
  const merge = key !== null && key === history.lastKey && now - history.lastAt <= mergeWindowMs && history.past.length > 0;
  const past = merge ? history.past : [...history.past, history.present].slice(-limit);
  return { past, present: next, future: [], lastKey: key, lastAt: now };
}

export function canUndo<T>(history: History<T>): boolean {
  return history.past.length > 0;
}

export function canRedo<T>(history: History<T>): boolean {
  return history.future.length > 0;
}

/** One step back; ``history`` itself when there is nothing to undo. */
export function undo<T>(history: History<T>): History<T> {
  if (!history.past.length) return history;
  const previous = history.past[history.past.length - 1];
  return { past: history.past.slice(0, -1), present: previous, future: [history.present, ...history.future], lastKey: null, lastAt: 0 };
}

/** One step forward again; ``history`` itself when nothing was undone. */
export function redo<T>(history: History<T>): History<T> {
  if (!history.future.length) return history;
  const [next, ...future] = history.future;
  return { past: [...history.past, history.present], present: next, future, lastKey: null, lastAt: 0 };
}
