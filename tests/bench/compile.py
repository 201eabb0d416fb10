"""How long compiling a large definition takes, to show compilation stays linear in nodes and edges.

Not a test. Run with ``.venv/bin/python -m tests.bench.compile [sizes...]``; prints one line per size (wall and
CPU time; each size is compiled in the same process, so templates seen before come from the template cache).
Each definition is a chain whose every node is a transform naming the node before it and the first node,
so the compiler checks two template references per node.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common.workflow.compiler import compile_definition


def referencing_chain(n: int) -> dict[str, Any]:
    """A chain ``n0 -> n1 -> ...`` where each node's output template names its predecessor and ``n0``."""
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "noop"}]
    nodes += [
        {"id": f"n{i}", "type": "transform", "config": {"output": f"{{{{ nodes.n{i - 1}.output }}}}{{{{ nodes.n0 }}}}"}}
        for i in range(1, n)
    ]
    return {"nodes": nodes, "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000, 4_000])
    args = parser.parse_args()
    for n in args.sizes:
        definition = referencing_chain(n)
        started, cpu = time.perf_counter(), time.process_time()
        compile_definition(definition)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"{n:>6} nodes, {n - 1:>6} edges: {wall:.3f} s ({cpu:.3f} s CPU)")


if __name__ == "__main__":
    main()
