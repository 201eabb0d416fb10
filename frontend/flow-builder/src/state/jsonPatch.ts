// RFC 6902 applied to plain JSON, to step a run's definition through its patches (base → patch 1 … N).
import type { PatchOp } from "../api/types";

function tokens(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new Error(`JSON pointer ${JSON.stringify(path)}: expected a leading '/'`);
  return path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function parentOf(doc: unknown, path: string): { parent: Record<string, unknown> | unknown[]; key: string } {
  const parts = tokens(path);
  const key = parts.pop();
  if (key === undefined) throw new Error("JSON pointer '': the root has no parent");
  let node: unknown = doc;
  for (const part of parts) {
    node = Array.isArray(node) ? node[Number(part)] : (node as Record<string, unknown>)?.[part];
    if (node === undefined || node === null || typeof node !== "object") throw new Error(`path ${path}: not found`);
  }
  return { parent: node as Record<string, unknown> | unknown[], key };
}

function get(doc: unknown, path: string): unknown {
  let node = doc;
  for (const part of tokens(path)) node = Array.isArray(node) ? node[Number(part)] : (node as Record<string, unknown>)?.[part];
  return node;
}

/** ``doc`` after ``ops`` (``doc`` itself is not changed); throws on an op that does not apply. */
export function applyPatch<T>(doc: T, ops: PatchOp[]): T {
  let root: unknown = clone(doc);
  for (const op of ops) {
    if (op.path === "" && (op.op === "add" || op.op === "replace")) {
      root = clone(op.value);
      continue;
    }
    switch (op.op) {
      case "add":
      case "replace": {
        const { parent, key } = parentOf(root, op.path);
        if (Array.isArray(parent)) {
          const index = key === "-" ? parent.length : Number(key);
          if (op.op === "add") parent.splice(index, 0, clone(op.value));
          else parent[index] = clone(op.value);
        } else parent[key] = clone(op.value);
        break;
      }
      case "remove": {
        const { parent, key } = parentOf(root, op.path);
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key];
        break;
      }
      case "copy":
      case "move": {
        const value = clone(get(root, op.from ?? ""));
        if (op.op === "move") root = applyPatch(root, [{ op: "remove", path: op.from ?? "" }]);
        root = applyPatch(root, [{ op: "add", path: op.path, value }]);
        break;
      }
      case "test":
        break;
      default:
        throw new Error(`op ${JSON.stringify(op.op)}: expected add, remove, replace, move, copy or test`);
    }
  }
  return root as T;
}
