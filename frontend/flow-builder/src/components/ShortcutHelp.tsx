// The keyboard help overlay (``?``): every shortcut of the builder, from the same list the key handler uses.
import { useEffect, useRef } from "react";
import { SHORTCUTS } from "../state/shortcuts";

export function ShortcutHelp({ onClose }: { onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => close.current?.focus(), []);
  return (
    <div className="modal-back" onClick={onClose}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title" data-testid="shortcut-help" onClick={(e) => e.stopPropagation()}>
        <div className="row">
          <h2 id="shortcuts-title" style={{ flex: 1 }}>Keyboard shortcuts</h2>
          <button ref={close} onClick={onClose} aria-label="close help">×</button>
        </div>
        <table className="list shortcuts">
          <thead>
            <tr><th scope="col">Keys</th><th scope="col">Does</th></tr>
          </thead>
          <tbody>
            {SHORTCUTS.map((s) => (
              <tr key={s.action}>
                <td>{s.keys.map((k, i) => <span key={k}>{i > 0 && " or "}<kbd>{k}</kbd></span>)}</td>
                <td>{s.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted">Ctrl is Cmd on a Mac. Shift+drag selects a box of nodes; Ctrl+click adds a node to the selection. Inside a text field the keys keep their usual meaning.</p>
      </div>
    </div>
  );
}
