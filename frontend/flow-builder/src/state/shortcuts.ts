// The builder's keyboard shortcuts, as data: the key handler matches against this list and the help overlay
// (``?``) shows it, so the two cannot disagree. Ctrl stands for Cmd on a Mac.

export type ShortcutAction =
  | "undo"
  | "redo"
  | "copy"
  | "cut"
  | "paste"
  | "duplicate"
  | "selectAll"
  | "delete"
  | "save"
  | "searchPalette"
  | "help"
  | "escape";

export type Shortcut = { action: ShortcutAction; keys: string[]; description: string };

export const SHORTCUTS: Shortcut[] = [
  { action: "undo", keys: ["Ctrl+Z"], description: "Undo" },
  { action: "redo", keys: ["Ctrl+Shift+Z", "Ctrl+Y"], description: "Redo" },
  { action: "copy", keys: ["Ctrl+C"], description: "Copy the selected nodes (and the edges between them)" },
  { action: "cut", keys: ["Ctrl+X"], description: "Cut the selected nodes" },
  { action: "paste", keys: ["Ctrl+V"], description: "Paste nodes, here or in another workflow" },
  { action: "duplicate", keys: ["Ctrl+D"], description: "Duplicate the selected nodes" },
  { action: "selectAll", keys: ["Ctrl+A"], description: "Select every node" },
  { action: "delete", keys: ["Delete", "Backspace"], description: "Delete the selected nodes and edges" },
  { action: "save", keys: ["Ctrl+S"], description: "Save as a new version" },
  { action: "searchPalette", keys: ["/"], description: "Search the node palette (Enter adds the first match)" },
  { action: "help", keys: ["?"], description: "Show or hide this help" },
  { action: "escape", keys: ["Escape"], description: "Close this help, or clear the selection" },
];

/** The parts of a keyboard event a shortcut depends on. */
export type KeyPress = { key: string; ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean };

function describe(press: KeyPress): string {
  const parts: string[] = [];
  if (press.ctrlKey || press.metaKey) parts.push("Ctrl");
  // "?" and "/" are typed with or without Shift depending on the layout; the character decides.
  const printable = press.key.length === 1 && !/[a-z]/i.test(press.key);
  if (press.shiftKey && !printable) parts.push("Shift");
  parts.push(press.key.length === 1 ? press.key.toUpperCase() : press.key);
  return parts.join("+");
}

/** The action ``press`` triggers; null for none. ``inField``: focus is in a text field, where only Ctrl+S acts, so
 * typing, and undo, copy and Escape inside the field, keep their usual meaning. */
export function matchShortcut(press: KeyPress, inField: boolean): ShortcutAction | null {
  if (press.altKey) return null;
  const name = describe(press);
  const found = SHORTCUTS.find((s) => s.keys.includes(name));
  if (!found) return null;
  if (inField && found.action !== "save") return null;
  return found.action;
}
