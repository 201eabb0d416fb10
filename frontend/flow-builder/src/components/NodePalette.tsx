// The node palette: node types filtered by a search over their names and descriptions; drag one onto the canvas,
// or press Enter / click to add it in the middle of the view (so the keyboard alone builds a workflow).
import { forwardRef, useState } from "react";
import type { NodeType } from "../api/types";

export function matchesSearch(type: NodeType, search: string): boolean {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const text = `${type.type} ${type.config_schema.description ?? ""}`.toLowerCase();
  return words.every((word) => text.includes(word));
}

export const NodePalette = forwardRef<HTMLInputElement, { types: NodeType[]; onAdd: (type: string) => void }>(function NodePalette(
  { types, onAdd },
  searchRef,
) {
  const [search, setSearch] = useState("");
  const shown = types.filter((t) => matchesSearch(t, search));
  return (
    <section aria-labelledby="palette-title">
      <h2 id="palette-title" style={{ marginTop: 14 }}>Node types</h2>
      <input
        ref={searchRef}
        type="search"
        aria-label="search node types"
        placeholder="search node types ( / )"
        value={search}
        data-testid="palette-search"
        onChange={(e) => setSearch(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && shown.length) onAdd(shown[0].type);
          if (e.key === "Escape") setSearch("");
        }}
      />
      <p className="muted">Drag onto the canvas, or press Enter to add.</p>
      <ul className="palette" aria-label="node types">
        {shown.map((t) => (
          <li key={t.type}>
            <button
              type="button"
              className="palette-item"
              draggable
              data-testid={`palette-${t.type}`}
              onClick={() => onAdd(t.type)}
              onDragStart={(e) => {
                e.dataTransfer.setData("application/aob-node-type", t.type);
                e.dataTransfer.effectAllowed = "move";
              }}
            >
              <b>{t.type}</b>
              <small title={t.config_schema.description}>{t.config_schema.description}</small>
            </button>
          </li>
        ))}
      </ul>
      {!shown.length && <p className="muted" data-testid="palette-empty">No node type matches “{search}”.</p>}
    </section>
  );
});
