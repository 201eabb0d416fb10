// A form from a JSON Schema: one field per property, each with the input it needs and a parser back to JSON.
import type { JsonSchema } from "../api/types";

export type FieldKind = "string" | "text" | "number" | "integer" | "boolean" | "enum" | "list" | "json";

export type FormField = {
  name: string;
  label: string;
  description?: string;
  kind: FieldKind;
  required: boolean;
  nullable: boolean;
  options?: string[];
  itemKind?: "string" | "number" | "integer";
  defaultValue?: unknown;
};

const LONG_TEXT = new Set(["prompt", "system", "description", "body"]);

/** The fields of an object schema, required ones first, in the schema's own order otherwise. */
export function schemaToFields(schema: JsonSchema | undefined): FormField[] {
  const properties = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const fields = Object.entries(properties).map(([name, property]) => fieldFor(name, property, required.has(name)));
  return [...fields.filter((f) => f.required), ...fields.filter((f) => !f.required)];
}

function fieldFor(name: string, property: JsonSchema, required: boolean): FormField {
  const options = (property.anyOf ?? []).filter((option) => option.type !== "null");
  const nullable = (property.anyOf ?? []).some((option) => option.type === "null");
  const effective = options.length === 1 ? { ...property, ...options[0], anyOf: undefined } : property;
  const base = {
    name,
    label: property.title ?? name,
    description: property.description,
    required,
    nullable,
    defaultValue: property.default,
  };
  if (effective.enum) return { ...base, kind: "enum", options: effective.enum.map(String) };
  switch (effective.type) {
    case "string":
      return { ...base, kind: LONG_TEXT.has(name) ? "text" : "string" };
    case "number":
      return { ...base, kind: "number" };
    case "integer":
      return { ...base, kind: "integer" };
    case "boolean":
      return { ...base, kind: "boolean" };
    case "array": {
      const item = effective.items ?? {};
      if (item.enum) return { ...base, kind: "list", itemKind: "string", options: item.enum.map(String) };
      if (item.type === "string" || item.type === "number" || item.type === "integer") {
        return { ...base, kind: "list", itemKind: item.type };
      }
      return { ...base, kind: "json" };
    }
    default:
      return { ...base, kind: "json" };
  }
}

/** What an input shows for ``value`` (``undefined``: the field is unset). */
export function formatValue(field: FormField, value: unknown): string | boolean {
  if (field.kind === "boolean") return value === undefined ? Boolean(field.defaultValue) : Boolean(value);
  if (value === undefined || value === null) return "";
  if (field.kind === "json") return JSON.stringify(value, null, 2);
  if (field.kind === "list" && Array.isArray(value)) return value.join(", ");
  return String(value);
}

export type Parsed = { value?: unknown; error?: string };

const TEMPLATE = /\{\{.*\}\}/s;

/** ``raw`` from an input as JSON for ``field``; empty means unset. Templates are kept as strings. */
export function parseValue(field: FormField, raw: string | boolean): Parsed {
  if (field.kind === "boolean") return { value: Boolean(raw) };
  const text = String(raw);
  if (text.trim() === "") return {};
  if (TEMPLATE.test(text) && field.kind !== "json") return { value: text };
  switch (field.kind) {
    case "number":
    case "integer": {
      const number = Number(text);
      if (!Number.isFinite(number) || (field.kind === "integer" && !Number.isInteger(number))) {
        return { error: `${field.name}: expected ${field.kind === "integer" ? "an integer" : "a number"}, got ${JSON.stringify(text)}` };
      }
      return { value: number };
    }
    case "enum":
      return field.options?.includes(text)
        ? { value: text }
        : { error: `${field.name}: expected one of ${field.options?.join(", ")}, got ${JSON.stringify(text)}` };
    case "list": {
      const items = text.split(",").map((s) => s.trim()).filter(Boolean);
      if (field.itemKind === "string") return { value: items };
      const numbers = items.map(Number);
      const bad = items.find((_, i) => !Number.isFinite(numbers[i]));
      return bad === undefined ? { value: numbers } : { error: `${field.name}: expected numbers, got ${JSON.stringify(bad)}` };
    }
    case "json":
      try {
        return { value: JSON.parse(text) };
      } catch (exc) {
        return { error: `${field.name}: expected JSON (${(exc as Error).message})` };
      }
    default:
      return { value: text };
  }
}

/** An object of the parsed values plus every error, including required fields left empty. */
export function collectValues(fields: FormField[], raws: Record<string, string | boolean>): { value: Record<string, unknown>; errors: string[] } {
  const value: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const field of fields) {
    const raw = raws[field.name];
    const parsed = raw === undefined ? {} : parseValue(field, raw);
    if (parsed.error) errors.push(parsed.error);
    else if (parsed.value !== undefined) value[field.name] = parsed.value;
    else if (field.required) errors.push(`${field.name}: required`);
  }
  return { value, errors };
}

/** Templates a config value may use: run inputs and the outputs of nodes that run before this one. */
export function templateHints(inputs: JsonSchema | undefined, upstream: string[]): string[] {
  const names = Object.keys(inputs?.properties ?? {});
  return [...names.map((n) => `{{ inputs.${n} }}`), ...upstream.map((id) => `{{ nodes.${id}.output }}`)];
}
