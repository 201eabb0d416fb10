import { describe, expect, it } from "vitest";
import type { JsonSchema } from "../api/types";
import { collectValues, formatValue, parseValue, schemaToFields, templateHints } from "./schemaForm";

const http: JsonSchema = {
  type: "object",
  required: ["url"],
  properties: {
    method: { type: "string", enum: ["GET", "POST"], default: "GET" },
    url: { type: "string", description: "http(s) URL" },
    headers: { type: "object", additionalProperties: { type: "string" } },
    timeout_s: { type: "number", default: 30 },
    expected_status: { anyOf: [{ type: "array", items: { type: "integer" } }, { type: "null" }] },
    follow_redirects: { type: "boolean", default: true },
    body: { anyOf: [{ type: "string" }, { type: "null" }] },
  },
};

describe("schemaToFields", () => {
  it("gives one field per property, required first, with the right inputs", () => {
    const fields = schemaToFields(http);
    expect(fields.map((f) => f.name)).toEqual(["url", "method", "headers", "timeout_s", "expected_status", "follow_redirects", "body"]);
    const kinds = Object.fromEntries(fields.map((f) => [f.name, f.kind]));
    expect(kinds).toEqual({
      url: "string",
      method: "enum",
      headers: "json",
      timeout_s: "number",
      expected_status: "list",
      follow_redirects: "boolean",
      body: "text",
    });
    expect(fields.find((f) => f.name === "body")?.nullable).toBe(true);
    expect(fields.find((f) => f.name === "method")?.options).toEqual(["GET", "POST"]);
  });

  it("handles a schema without properties", () => {
    expect(schemaToFields({ type: "object" })).toEqual([]);
    expect(schemaToFields(undefined)).toEqual([]);
  });
});

describe("parseValue / formatValue", () => {
  const fields = Object.fromEntries(schemaToFields(http).map((f) => [f.name, f]));

  it("parses numbers, lists, JSON and enums, with errors naming the field", () => {
    expect(parseValue(fields.timeout_s, "2.5")).toEqual({ value: 2.5 });
    expect(parseValue(fields.timeout_s, "soon").error).toMatch(/timeout_s: expected a number/);
    expect(parseValue(fields.expected_status, "200, 201")).toEqual({ value: [200, 201] });
    expect(parseValue(fields.headers, '{"A": "b"}')).toEqual({ value: { A: "b" } });
    expect(parseValue(fields.headers, "{oops").error).toMatch(/headers: expected JSON/);
    expect(parseValue(fields.method, "PUT").error).toMatch(/expected one of GET, POST/);
    expect(parseValue(fields.url, "")).toEqual({});
  });

  it("keeps templates as strings, even in number fields", () => {
    expect(parseValue(fields.timeout_s, "{{ inputs.t }}")).toEqual({ value: "{{ inputs.t }}" });
    expect(parseValue(fields.url, "{{ nodes.a.output.url }}")).toEqual({ value: "{{ nodes.a.output.url }}" });
  });

  it("round-trips values through the inputs", () => {
    for (const [name, value] of [["headers", { A: "b" }], ["expected_status", [200]], ["timeout_s", 3]] as const) {
      expect(parseValue(fields[name], formatValue(fields[name], value))).toEqual({ value });
    }
    expect(formatValue(fields.follow_redirects, undefined)).toBe(true);
  });

  it("collects values and reports required fields left empty", () => {
    const all = schemaToFields(http);
    expect(collectValues(all, { method: "POST" })).toEqual({ value: { method: "POST" }, errors: ["url: required"] });
    expect(collectValues(all, { url: "https://x", timeout_s: "1" }).value).toEqual({ url: "https://x", timeout_s: 1 });
  });
});

describe("templateHints", () => {
  it("lists inputs and upstream outputs", () => {
    const hints = templateHints({ type: "object", properties: { city: { type: "string" } } }, ["fetch"]);
    expect(hints).toEqual(["{{ inputs.city }}", "{{ nodes.fetch.output }}"]);
  });
});
