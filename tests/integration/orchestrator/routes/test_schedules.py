"""``/api/v1/schedules``: create, list, read, change, delete; validation refusals name the field; roles and
tenants are respected."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import asyncpg
import redis.asyncio as aioredis

from tests.support.api import chain_definition, running_api
from tests.support.deployment import Deployment

TYPED = {
    "inputs": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "nodes": [{"id": "n", "type": "noop"}],
}


def _gaps(fires: list[str]) -> set[timedelta]:
    times = [datetime.fromisoformat(fire) for fire in fires]
    return {later - earlier for earlier, later in pairwise(times)}


async def test_crud_and_next_fire_times(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("nightly", chain_definition(1))
        body = {"workflow": "nightly", "cron": "*/5 * * * *", "timezone": "Europe/Paris", "inputs": {"a": 1}}
        created = await api.request("POST", "/api/v1/schedules", json=body)
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert schedule["overlap"] == "skip" and schedule["catchup"] == "none" and not schedule["paused"]
        assert len(schedule["next_fire_times"]) == 5 and _gaps(schedule["next_fire_times"]) == {timedelta(minutes=5)}
        assert schedule["next_fire_times"][0] == schedule["next_fire_at"]
        path = f"/api/v1/schedules/{schedule['id']}"

        assert (await api.request("GET", path)).json()["id"] == schedule["id"]
        listed = (await api.request("GET", "/api/v1/schedules", params={"workflow": "nightly"})).json()
        assert [item["id"] for item in listed["items"]] == [schedule["id"]]

        # An interval replaces the cron expression; its fire times are whole multiples of it.
        changed = await api.request("PATCH", path, json={"interval_s": 60})
        assert changed.status_code == 200, changed.text
        assert changed.json()["cron"] is None and _gaps(changed.json()["next_fire_times"]) == {timedelta(minutes=1)}
        assert datetime.fromisoformat(changed.json()["next_fire_at"]).second == 0

        paused = (await api.request("PATCH", path, json={"paused": True})).json()
        assert paused["paused"] and paused["next_fire_times"] == []

        assert (await api.request("DELETE", path)).status_code == 204
        assert (await api.request("GET", path)).status_code == 404
        assert (await api.request("DELETE", path)).status_code == 404


async def test_invalid_schedules_are_refused_naming_the_field(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("typed", TYPED)
        cases = [
            ({"cron": "every day"}, "body.cron"),
            ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "body.timezone"),
            ({"cron": "0 * * * *", "overlap": "queue"}, "body.overlap"),
            ({"interval_s": 0}, "body.interval_s"),
            ({"cron": "0 * * * *", "catchup": "all", "catchup_max": 0}, "body.catchup_max"),
            ({"cron": "0 * * * *", "interval_s": 60}, "body"),
            ({}, "body"),
        ]
        for fields, path in cases:
            response = await api.request(
                "POST", "/api/v1/schedules", json={"workflow": "typed", "inputs": {"city": "x"}, **fields}
            )
            assert response.status_code == 422, (fields, response.text)
            assert path in [detail["path"] for detail in response.json()["error"]["details"]], response.text

        missing_input = await api.request("POST", "/api/v1/schedules", json={"workflow": "typed", "interval_s": 5})
        assert missing_input.status_code == 422 and "inputs" in missing_input.text
        unknown = await api.request("POST", "/api/v1/schedules", json={"workflow": "nope", "interval_s": 5})
        assert unknown.status_code == 404
        pinned = {"workflow": "typed", "interval_s": 5, "version": 9, "inputs": {"city": "x"}}
        no_version = await api.request("POST", "/api/v1/schedules", json=pinned)
        assert no_version.status_code == 404

        ok = {"workflow": "typed", "interval_s": 5, "inputs": {"city": "x"}}
        schedule = (await api.request("POST", "/api/v1/schedules", json=ok)).json()
        path = f"/api/v1/schedules/{schedule['id']}"
        bad_zone = await api.request("PATCH", path, json={"cron": "0 * * * *", "timezone": "Nowhere"})
        assert bad_zone.status_code == 422 and bad_zone.json()["error"]["details"][0]["path"] == "body.timezone"
        bad_inputs = await api.request("PATCH", path, json={"inputs": {}})
        assert bad_inputs.status_code == 422
        assert (await api.request("GET", path)).json()["inputs"] == {"city": "x"}


async def test_readers_read_editors_write_tenants_are_apart(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        reader = await api.new_key(role="viewer")
        editor = await api.new_key(role="editor")
        body = {"workflow": "w", "interval_s": 30}
        assert (await api.request("POST", "/api/v1/schedules", key=reader, json=body)).status_code == 403
        created = await api.request("POST", "/api/v1/schedules", key=editor, json=body)
        assert created.status_code == 201, created.text
        path = f"/api/v1/schedules/{created.json()['id']}"
        assert (await api.request("GET", path, key=reader)).status_code == 200
        assert (await api.request("PATCH", path, key=reader, json={"paused": True})).status_code == 403
        assert (await api.request("DELETE", path, key=reader)).status_code == 403

        other = await api.new_key(tenant="other", role="admin")
        assert (await api.request("GET", path, key=other)).status_code == 404
        assert (await api.request("GET", "/api/v1/schedules", key=other)).json()["items"] == []
        assert (await api.request("DELETE", path, key=other)).status_code == 404
