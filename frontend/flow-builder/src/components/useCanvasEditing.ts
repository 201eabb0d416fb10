// The builder's editing comforts over its canvas state: undo/redo (every change of the document is recorded, a drag
// once it ends), copy/cut/paste through the system clipboard with localStorage as the fallback, duplicate,
// select all, delete, and the keyboard shortcuts that trigger them.
import { useCallback, useEffect, useRef, useState } from "react";
import { documentOf, editKey, restore, showsDocument, type CanvasDocument } from "../state/canvasDocument";
import { copySelection, parseClip, pasteClip, serializeClip, type Clip } from "../state/clipboard";
import type { FlowEdge, FlowNode } from "../state/graph";
import { canRedo, canUndo, record, redo, startHistory, undo, type History } from "../state/history";
import { matchShortcut, type ShortcutAction } from "../state/shortcuts";

type SetState<T> = (update: T | ((current: T) => T)) => void;

/** Where copied nodes wait when the system clipboard cannot be read (a Paste button, a refused permission). */
export const CLIPBOARD_STORAGE_KEY = "aob.clipboard";

export type EditingOptions = {
  nodes: FlowNode[];
  edges: FlowEdge[];
  setNodes: SetState<FlowNode[]>;
  setEdges: SetState<FlowEdge[]>;
  /** False while the canvas shows something else (a comparison) or a dialog is open. */
  enabled: boolean;
  /** Where pasted nodes go (the pointer over the canvas, else the middle of the view), in flow coordinates. */
  pastePoint: () => { x: number; y: number };
  notify: (text: string, error?: boolean) => void;
  /** The other shortcuts: save, focus the palette search, show the help. */
  onAction: (action: "save" | "searchPalette" | "help" | "escape") => void;
};

function inTextField(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (!element || !element.tagName) return false;
  return ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName) || element.isContentEditable;
}

function selectedIds(nodes: FlowNode[], edges: FlowEdge[]): Set<string> {
  return new Set([...nodes.filter((n) => n.selected).map((n) => n.id), ...edges.filter((e) => e.selected).map((e) => e.id)]);
}

export function useCanvasEditing(options: EditingOptions) {
  const { nodes, edges, setNodes, setEdges, enabled } = options;
  const [history, setHistory] = useState<History<CanvasDocument>>(() => startHistory(documentOf([], [])));
  const latest = useRef({ ...options, history });
  latest.current = { ...options, history };

  // Any change of the document is one step (merged with the next of its kind); a drag only once dropped.
  useEffect(() => {
    if (nodes.some((n) => n.dragging)) return;
    setHistory((h) => {
      if (showsDocument(h.present, nodes, edges)) return h;
      const next = documentOf(nodes, edges);
      return record(h, next, { key: editKey(h.present, next) });
    });
  }, [nodes, edges]);

  /** Forget the history: the canvas now shows a freshly opened workflow. */
  const reset = useCallback((opened: FlowNode[], openedEdges: FlowEdge[]) => setHistory(startHistory(documentOf(opened, openedEdges))), []);

  const step = useCallback(
    (direction: "undo" | "redo") => {
      const { history: h, nodes: current, edges: currentEdges } = latest.current;
      const next = direction === "undo" ? undo(h) : redo(h);
      if (next === h) return;
      const shown = restore(next.present, selectedIds(current, currentEdges));
      setHistory(next);
      setNodes(shown.nodes);
      setEdges(shown.edges);
    },
    [setNodes, setEdges],
  );

  const insert = useCallback(
    (clip: Clip, at?: { x: number; y: number }) => {
      const pasted = pasteClip(clip, latest.current.nodes, latest.current.edges, { at });
      setNodes((current) => [...current.map((n) => (n.selected ? { ...n, selected: false } : n)), ...pasted.nodes]);
      setEdges((current) => [...current.map((e) => (e.selected ? { ...e, selected: false } : e)), ...pasted.edges]);
      latest.current.notify(`Pasted ${pasted.nodes.length} node${pasted.nodes.length > 1 ? "s" : ""}: ${pasted.nodes.map((n) => n.id).join(", ")}.`);
    },
    [setNodes, setEdges],
  );

  const remove = useCallback(() => {
    const gone = new Set(latest.current.nodes.filter((n) => n.selected).map((n) => n.id));
    setNodes((current) => current.filter((n) => !gone.has(n.id)));
    setEdges((current) => current.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target)));
  }, [setNodes, setEdges]);

  /** The selection as clipboard text, also kept in localStorage; null (and a message) when nothing is selected. */
  const copyText = useCallback((): string | null => {
    const clip = copySelection(latest.current.nodes, latest.current.edges);
    if (!clip) {
      latest.current.notify("Select one or more nodes to copy.", true);
      return null;
    }
    const text = serializeClip(clip);
    localStorage.setItem(CLIPBOARD_STORAGE_KEY, text);
    latest.current.notify(`Copied ${clip.nodes.length} node${clip.nodes.length > 1 ? "s" : ""}.`);
    return text;
  }, []);

  const pasteText = useCallback(
    (text: string | null) => {
      const source = text?.trim() ? text : localStorage.getItem(CLIPBOARD_STORAGE_KEY);
      const parsed = source ? parseClip(source) : null;
      if (!parsed) return latest.current.notify("Nothing to paste: copy nodes first (Ctrl+C).", true);
      if ("error" in parsed) return latest.current.notify(parsed.error, true);
      insert(parsed.clip, latest.current.pastePoint());
    },
    [insert],
  );

  const duplicate = useCallback(() => {
    const clip = copySelection(latest.current.nodes, latest.current.edges);
    if (clip) insert(clip);
  }, [insert]);

  /** Copy, cut and paste from buttons, where no clipboard event carries the data. */
  const buttons = {
    copy: () => {
      const text = copyText();
      if (text) void navigator.clipboard?.writeText(text).catch(() => {});
    },
    cut: () => {
      const text = copyText();
      if (text) {
        void navigator.clipboard?.writeText(text).catch(() => {});
        remove();
      }
    },
    paste: () => {
      const read = navigator.clipboard?.readText?.();
      if (!read) return pasteText(null);
      read.then(pasteText, () => pasteText(null));
    },
  };

  useEffect(() => {
    if (!enabled) return;
    // Copy, cut and paste come as clipboard events (the keys, or the browser's menu); they carry the data
    // without asking for a permission. Inside a text field they are the field's own.
    const onCopy = (event: ClipboardEvent) => {
      if (inTextField(event.target) || !latest.current.nodes.some((n) => n.selected)) return;
      const text = copyText();
      if (!text) return;
      event.clipboardData?.setData("text/plain", text);
      event.preventDefault();
      if (event.type === "cut") remove();
    };
    const onPaste = (event: ClipboardEvent) => {
      if (inTextField(event.target)) return;
      event.preventDefault();
      pasteText(event.clipboardData?.getData("text/plain") ?? null);
    };
    const onKey = (event: KeyboardEvent) => {
      const action: ShortcutAction | null = matchShortcut(event, inTextField(event.target));
      if (!action || action === "copy" || action === "cut" || action === "paste") return;
      event.preventDefault();
      if (action === "undo" || action === "redo") step(action);
      else if (action === "delete") remove();
      else if (action === "selectAll") setNodes((current) => current.map((n) => (n.selected ? n : { ...n, selected: true })));
      else if (action === "duplicate") duplicate();
      else latest.current.onAction(action);
    };
    document.addEventListener("copy", onCopy);
    document.addEventListener("cut", onCopy);
    document.addEventListener("paste", onPaste);
    window.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("copy", onCopy);
      document.removeEventListener("cut", onCopy);
      document.removeEventListener("paste", onPaste);
      window.removeEventListener("keydown", onKey);
    };
  }, [enabled, copyText, pasteText, remove, step, duplicate, setNodes]);

  return {
    undo: () => step("undo"),
    redo: () => step("redo"),
    canUndo: canUndo(history),
    canRedo: canRedo(history),
    reset,
    remove,
    duplicate,
    ...buttons,
  };
}
