import { describe, expect, it } from "vitest";
import { matchShortcut } from "./shortcuts";

describe("shortcuts", () => {
  const press = (key: string, mods: { ctrl?: boolean; meta?: boolean; shift?: boolean; alt?: boolean } = {}) => ({
    key,
    ctrlKey: !!mods.ctrl,
    metaKey: !!mods.meta,
    shiftKey: !!mods.shift,
    altKey: !!mods.alt,
  });

  it("maps Ctrl or Cmd combinations, Delete, ? and /", () => {
    expect(matchShortcut(press("z", { ctrl: true }), false)).toBe("undo");
    expect(matchShortcut(press("z", { meta: true }), false)).toBe("undo");
    expect(matchShortcut(press("Z", { ctrl: true, shift: true }), false)).toBe("redo");
    expect(matchShortcut(press("y", { ctrl: true }), false)).toBe("redo");
    expect(matchShortcut(press("c", { ctrl: true }), false)).toBe("copy");
    expect(matchShortcut(press("v", { meta: true }), false)).toBe("paste");
    expect(matchShortcut(press("Delete"), false)).toBe("delete");
    expect(matchShortcut(press("Backspace"), false)).toBe("delete");
    expect(matchShortcut(press("?", { shift: true }), false)).toBe("help");
    expect(matchShortcut(press("/"), false)).toBe("searchPalette");
    expect(matchShortcut(press("z"), false)).toBeNull();
    expect(matchShortcut(press("z", { ctrl: true, alt: true }), false)).toBeNull();
  });

  it("leaves keys to a focused text field except save", () => {
    expect(matchShortcut(press("z", { ctrl: true }), true)).toBeNull();
    expect(matchShortcut(press("Backspace"), true)).toBeNull();
    expect(matchShortcut(press("?", { shift: true }), true)).toBeNull();
    expect(matchShortcut(press("Escape"), true)).toBeNull();
    expect(matchShortcut(press("Escape"), false)).toBe("escape");
    expect(matchShortcut(press("s", { ctrl: true }), true)).toBe("save");
  });
});
