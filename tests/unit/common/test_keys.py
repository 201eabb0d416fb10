"""``common/keys.py`` names every key alone: key templates, and no key name spelled in any Lua script."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from redis.crc import key_slot

from common.keys import Keys, KeyTemplate, ShardKeys, shard_tags

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("common", "coordinator", "workers", "fanout", "orchestrator", "devstack")
BLANK = "\x00"
# String literals that contain a key name part without being a key.
NOT_KEYS = {"cas://": "the scheme of an output reference (common/runs/cas.py)"}


def key_name_parts() -> set[str]:
    """The fixed parts of every name ``Keys`` builds (``wf.tasks.``, ``run:{``, ``wf.ledger``, ...)."""
    keys = Keys()
    parts: set[str] = set()
    for builder, cls in ((keys, Keys), (keys.shard(0), ShardKeys)):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or name in ("prefix", "shards", "index", "tag"):
                continue
            if isinstance(member, property):
                built = getattr(builder, name)
            elif callable(member) and not isinstance(member, type):
                arity = len(inspect.signature(member).parameters) - 1
                if arity < 1 or name in ("shard_of", "shard", "shard_for", "is_task_stream"):
                    continue
                built = getattr(builder, name)(*[BLANK] * arity)
            else:
                continue
            if not isinstance(built, str):
                continue
            # A shard's hash tag is not part of a name: the fixed parts are what stands around it.
            for tag in shard_tags(keys.shards):
                built = built.replace(tag, BLANK)
            parts |= {part for part in built.split(BLANK) if re.search("[a-z]", part)}
    return parts


def lua_string_literals(source: str) -> list[str]:
    """Every string literal of a Lua source, comments skipped ('...', "...", [[...]], [==[...]==])."""
    literals: list[str] = []
    i = 0
    while i < len(source):
        if source.startswith("--", i):
            long = re.match(r"--\[(=*)\[", source[i:])
            end = source.find(f"]{long.group(1)}]", i) if long else source.find("\n", i)
            i = len(source) if end < 0 else end + 1
        elif source[i] in "'\"":
            quote, j, text = source[i], i + 1, []
            while j < len(source) and source[j] != quote:
                if source[j] == "\\":
                    j += 1
                text.append(source[j])
                j += 1
            literals.append("".join(text))
            i = j + 1
        elif long := re.match(r"\[(=*)\[", source[i:]):
            close = f"]{long.group(1)}]"
            end = source.find(close, i)
            literals.append(source[i + len(long.group(0)) : end])
            i = end + len(close)
        else:
            i += 1
    return literals


def lua_sources() -> dict[str, str]:
    """Every Lua script of the packages: ``.lua`` files, and Python string constants holding Lua."""
    sources = {str(p.relative_to(REPO)): p.read_text() for root in PACKAGES for p in (REPO / root).rglob("*.lua")}
    for root in PACKAGES:
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and "redis.call(" in node.value:
                    sources[f"{path.relative_to(REPO)}:{node.lineno}"] = node.value
    return sources


def key_names_spelled(source: str, parts: set[str]) -> list[str]:
    return sorted(
        f"{literal!r} (spells {part!r})"
        for literal in lua_string_literals(source)
        if literal not in NOT_KEYS
        for part in parts
        if part in literal
    )


def test_no_lua_script_spells_a_key_name() -> None:
    parts = key_name_parts()
    sources = lua_sources()
    assert len([s for s in sources if s.endswith(".lua")]) >= 12 and len(sources) > 12
    spelled = {where: found for where, source in sources.items() if (found := key_names_spelled(source, parts))}
    assert spelled == {}, "pass keys through KEYS, or a KeyTemplate through ARGV (common/keys.py)"


def test_the_scan_finds_what_it_must() -> None:
    parts = key_name_parts()
    assert {"wf.tasks.", "events:tenant:", "wf.delayed:", "wf.children:", "run:", "completion_signals:"} <= parts
    source = """
    -- a comment may say wf.delayed:
    --[[ and so may a block: 'wf.children:' ]]
    redis.call('XADD', PREFIX .. 'wf.tasks.' .. t, '*', 't', body)
    redis.call('HGET', "events:tenant:" .. tenant, 'x')
    local raw = [[run:]] .. id .. '}'
    if string.sub(raw, 1, 6) == 'cas://' then return 'it\\'s fine' end
    """
    found = key_names_spelled(source, parts)
    assert {spelled.partition(" (")[0] for spelled in found} == {"'events:tenant:'", "'run:'", "'wf.tasks.'"}
    assert "'events:tenant:' (spells 'events:tenant:')" in found


@pytest.mark.parametrize(
    ("build", "value"), [("tasks", "builtin"), ("tenant_events", "acme"), ("coordinator_inflight", "c1")]
)
def test_a_template_builds_the_same_key_as_keys(build: str, value: str) -> None:
    keys = Keys("p7:")
    method = getattr(keys.shard(3), build)
    template = KeyTemplate.of(method)
    assert template.format(value) == method(value)
    assert template.for_lua() == [template.head, template.tail]
    assert template.head.startswith("p7:")


def test_a_template_needs_one_variable_part() -> None:
    with pytest.raises(ValueError, match="exactly one variable part"):
        KeyTemplate.of(lambda _: "fixed")
    with pytest.raises(ValueError, match="exactly one variable part"):
        KeyTemplate.of(lambda value: value + ":" + value)


def test_a_run_and_the_queues_of_its_shard_share_a_slot() -> None:
    keys = Keys("p:", shards=16)
    for run_id in ("r1", "a" * 32, "child:0:map:1:7"):
        shard = keys.shard_for(run_id)
        slots = {key_slot(k.encode()) for k in (keys.run(run_id), keys.events(run_id), shard.ledger, shard.delayed)}
        slots |= {key_slot(shard.tasks("http").encode()), key_slot(shard.completion_signals.encode())}
        assert len(slots) == 1, run_id


def test_shards_spread_evenly_over_the_slot_ranges_of_equal_primaries() -> None:
    for shards in (1, 3, 16, 64):
        slots = [key_slot(tag.encode()) for tag in shard_tags(shards)]
        # With N primaries holding equal contiguous ranges, shard i lands in the i-th range.
        assert [slot * shards // 16384 for slot in slots] == list(range(shards))
    assert len({Keys(shards=16).shard_of(f"run-{i}") for i in range(400)}) == 16
