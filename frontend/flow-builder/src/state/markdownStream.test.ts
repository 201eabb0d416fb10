import { describe, expect, it } from "vitest";
import { stablePrefix } from "./markdownStream";

/** Every prefix shown while ``text`` streams in pieces of ``size`` characters. */
function shownWhileStreaming(text: string, size: number): string[] {
  const shown: string[] = [];
  for (let end = size; end < text.length + size; end += size) {
    const arrived = text.slice(0, end);
    shown.push(arrived.slice(0, stablePrefix(arrived)));
  }
  return shown;
}

const SAMPLE = [
  "# Plan\n\nI will **check the inputs**, then _add two nodes_ with `patch_workflow`.",
  "See [the docs](https://example.com/a_b) and run:\n\n```python\nprint('a *b* c')\n```\n\n- one\n- two *three*\n",
].join("\n");

describe("stablePrefix", () => {
  it("never ends inside a word", () => {
    expect(stablePrefix("Hello wor")).toBe("Hello ".length);
    expect(stablePrefix("Hello")).toBe(0);
    expect(stablePrefix("Hello world\n")).toBe("Hello world\n".length);
  });

  it("holds back emphasis, code spans and links until they close", () => {
    expect("Go **bold wor".slice(0, stablePrefix("Go **bold wor"))).toBe("Go ");
    expect(stablePrefix("Go **bold words** now ")).toBe("Go **bold words** now ".length);
    expect("run `npm te".slice(0, stablePrefix("run `npm te"))).toBe("run ");
    expect("see [the docs](https://x.y/a b".slice(0, stablePrefix("see [the docs](https://x.y/a b"))).toBe("see ");
    expect("a _b c_ d ".slice(0, stablePrefix("a _b c_ d "))).toBe("a _b c_ d ");
    const tag = 'x <img src="a" onerror="b';
    expect(tag.slice(0, stablePrefix(tag))).toBe("x ");
    expect(stablePrefix('x <img src="a"> y ')).toBe('x <img src="a"> y '.length);
    expect(stablePrefix("1 < 2 and ")).toBe("1 < 2 and ".length);
  });

  it("treats list bullets, lone asterisks and snake_case as text", () => {
    expect(stablePrefix("* item one ")).toBe("* item one ".length);
    expect(stablePrefix("5 * 3 is ")).toBe("5 * 3 is ".length);
    expect(stablePrefix("call get_context now ")).toBe("call get_context now ".length);
  });

  it("shows a code block line by line, never half a line, and closes it", () => {
    const open = "Run:\n```sh\necho one\necho tw";
    expect(open.slice(0, stablePrefix(open))).toBe("Run:\n```sh\necho one\n");
    expect(stablePrefix("```sh\necho *x\n```\nafter *a* ")).toBe("```sh\necho *x\n```\nafter *a* ".length);
    expect(stablePrefix("``")).toBe(0);
  });

  it("lets a paragraph with an unclosed marker go once the paragraph ends", () => {
    expect(stablePrefix("a **never closed\n\nnext ")).toBe("a **never closed\n\nnext ".length);
    expect(stablePrefix("a **never closed\nsame paragraph ")).toBe("a ".length);
  });

  it("grows monotonically and never cuts a word or a construct, however the text is chunked", () => {
    for (const size of [1, 2, 3, 7, 16]) {
      const shown = shownWhileStreaming(SAMPLE, size);
      for (let i = 1; i < shown.length; i++) expect(shown[i].startsWith(shown[i - 1])).toBe(true);
      for (const prefix of shown) {
        if (prefix && prefix !== SAMPLE) expect(prefix).toMatch(/\s$/);
        const outsideFences = prefix.replace(/```[\s\S]*?(```|$)/g, "");
        expect((outsideFences.match(/\*\*/g) ?? []).length % 2).toBe(0);
        expect((outsideFences.match(/`/g) ?? []).length % 2).toBe(0);
      }
      expect(shown[shown.length - 1]).toBe(SAMPLE);
    }
  });
});
