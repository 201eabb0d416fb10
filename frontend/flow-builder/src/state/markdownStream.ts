// Streamed markdown is shown up to a safe point only: a prefix that ends between words and leaves no construct open,
// so a word never shows half-typed and `**bold` never flashes as literal asterisks before its closing `**` arrives.

/** Inline constructs open at the scan's position; none of them spans a blank line (the end of a paragraph).
 * ``tag``: an HTML tag or autolink begun with ``<`` and not yet closed by ``>``. */
type Inline = { code: number; marks: Set<string>; bracket: number; paren: number; tag: boolean };

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

function freshInline(): Inline {
  return { code: 0, marks: new Set(), bracket: 0, paren: 0, tag: false };
}

function balanced(state: Inline): boolean {
  return state.code === 0 && state.marks.size === 0 && state.bracket === 0 && state.paren === 0 && !state.tag;
}

function isSpace(char: string | undefined): boolean {
  return char === undefined || /\s/.test(char);
}

function isWordChar(char: string | undefined): boolean {
  return char !== undefined && /[\p{L}\p{N}]/u.test(char);
}

/** The length of the longest prefix of streamed markdown ``text`` that can be rendered now: it ends at whitespace,
 * and no code fence (inside one: whole lines only), code span, emphasis, link or HTML tag is left open (a half tag
 * would show as text until it closes, then vanish as the HTML it is). */
export function stablePrefix(text: string): number {
  let stable = 0;
  let fence: string | null = null;
  let inline = freshInline();
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf("\n", start);
    const complete = newline >= 0;
    const end = complete ? newline + 1 : text.length;
    const line = text.slice(start, complete ? newline : end);
    const opener = FENCE.exec(line);
    if (fence !== null) {
      if (!complete) break;
      const marker = opener?.[1];
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = null;
      stable = end;
    } else if (opener) {
      if (!complete) break;
      fence = opener[1];
      inline = freshInline();
      stable = end;
    } else if (line.trim() === "") {
      inline = freshInline();
      if (complete) stable = end;
    } else {
      const candidate = scanLine(line, start, inline);
      if (candidate > stable) stable = candidate;
      if (complete && balanced(inline)) stable = end;
    }
    start = end;
  }
  return stable;
}

/** Scan one line (``offset`` into the text), updating ``state``; the end of the last balanced whitespace. */
function scanLine(line: string, offset: number, state: Inline): number {
  let stable = -1;
  let i = 0;
  const indent = line.length - line.trimStart().length;
  while (i < line.length) {
    const char = line[i];
    if (char === "\\") {
      i += 2;
      continue;
    }
    if (char === "`") {
      let run = 1;
      while (line[i + run] === "`") run += 1;
      if (state.code === 0) state.code = run;
      else if (state.code === run) state.code = 0;
      i += run;
      continue;
    }
    if (state.code === 0) {
      if (char === "*" || char === "_") {
        let run = 1;
        while (line[i + run] === char) run += 1;
        const before = line[i - 1];
        const after = line[i + run];
        const bullet = char === "*" && i === indent && run === 1 && after === " ";
        const loose = isSpace(before) && isSpace(after);
        const intraword = char === "_" && isWordChar(before) && isWordChar(after);
        if (!bullet && !loose && !intraword) {
          if (run % 2 === 1) toggle(state.marks, char);
          if (run >= 2) toggle(state.marks, char + char);
        }
        i += run;
        continue;
      }
      if (char === "<" && /[A-Za-z/!?]/.test(line[i + 1] ?? "")) state.tag = true;
      else if (char === ">") state.tag = false;
      else if (char === "[") state.bracket += 1;
      else if (char === "]" && state.bracket > 0) {
        state.bracket -= 1;
        if (line[i + 1] === "(") {
          state.paren += 1;
          i += 1;
        }
      } else if (char === ")" && state.paren > 0) state.paren -= 1;
    }
    if (/\s/.test(char) && balanced(state)) stable = offset + i + 1;
    i += 1;
  }
  return stable;
}

function toggle(marks: Set<string>, mark: string): void {
  if (marks.has(mark)) marks.delete(mark);
  else marks.add(mark);
}
