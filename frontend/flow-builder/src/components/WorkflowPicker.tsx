// The workflow picker: an accessible combobox (downshift, WAI-ARIA 1.2) that searches the tenant's workflows by
// name on the server (``?name=<prefix>*``), so it finds any of them, not only the first page.
import { useCombobox } from "downshift";
import { useEffect, useState } from "react";
import type { Page, Workflow } from "../api/types";
import { go, useSession } from "../session";

const NEW = { id: "", name: "", version: 0 } as Pick<Workflow, "id" | "name" | "version">;
type Item = typeof NEW;

export function WorkflowPicker({ current, refreshKey }: { current: string | null; refreshKey: number }) {
  const { api } = useSession();
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<Item[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const prefix = query.trim();
    const timer = setTimeout(() => {
      const filter = prefix ? `&name=${encodeURIComponent(prefix.replace(/\*/g, "") + "*")}` : "";
      api
        .get<Page<Workflow>>(`/api/v1/workflows?limit=50${filter}`)
        .then((page) => {
          setFound(page.items.map((w) => ({ id: w.id, name: w.name, version: w.version })));
          setError(null);
        })
        .catch(() => setError("could not search workflows"));
    }, 150);
    return () => clearTimeout(timer);
  }, [api, query, refreshKey]);

  const items = [NEW, ...found];
  const { isOpen, highlightedIndex, getInputProps, getLabelProps, getMenuProps, getItemProps, getToggleButtonProps } = useCombobox({
    items,
    inputValue: query,
    itemToString: (item) => item?.name ?? "",
    onInputValueChange: ({ inputValue, type }) => {
      if (type === useCombobox.stateChangeTypes.InputChange) setQuery(inputValue);
    },
    onSelectedItemChange: ({ selectedItem }) => {
      setQuery("");
      if (selectedItem) go("builder", selectedItem.name || "new");
    },
    selectedItem: null,
  });

  return (
    <div className="picker">
      <label {...getLabelProps()} className="sr-only">Open a workflow</label>
      <div className="row">
        <input {...getInputProps()} placeholder={current ? `${current} · search…` : "search workflows…"} data-testid="workflow-search" />
        <button type="button" {...getToggleButtonProps()} aria-label="show workflows">▾</button>
      </div>
      <ul {...getMenuProps()} className={`listbox${isOpen ? " open" : ""}`} data-testid="workflow-options">
        {isOpen &&
          items.map((item, index) => (
            <li key={item.id || "new"} className={highlightedIndex === index ? "highlighted" : ""} {...getItemProps({ item, index })}>
              {item.name ? (
                <>
                  {item.name} <span className="muted">v{item.version}</span>
                  {item.name === current && <span className="muted"> · open</span>}
                </>
              ) : (
                <i>(new workflow)</i>
              )}
            </li>
          ))}
      </ul>
      {error && <div className="errors" role="alert">{error}</div>}
    </div>
  );
}
