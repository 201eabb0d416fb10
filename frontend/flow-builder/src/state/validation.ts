// Pin validation messages to what they concern: ``nodes[2].config.url: ...`` to the third node,
// ``edges[0].to: ...`` to the first edge; anything else concerns the whole workflow.
import type { Definition } from "../api/types";

export type PinnedErrors = { nodes: Record<string, string[]>; edges: Record<number, string[]>; workflow: string[] };

const AT = /^(nodes|edges)\[(\d+)\]/;

export function pinErrors(definition: Definition, messages: string[]): PinnedErrors {
  const pinned: PinnedErrors = { nodes: {}, edges: {}, workflow: [] };
  for (const message of messages) {
    const match = AT.exec(message);
    const index = match ? Number(match[2]) : -1;
    if (match?.[1] === "nodes" && definition.nodes[index]) {
      const id = definition.nodes[index].id;
      (pinned.nodes[id] ??= []).push(message);
    } else if (match?.[1] === "edges" && definition.edges[index]) {
      (pinned.edges[index] ??= []).push(message);
    } else {
      pinned.workflow.push(message);
    }
  }
  return pinned;
}
