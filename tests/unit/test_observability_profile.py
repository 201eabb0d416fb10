"""The compose file's `observability` profile parses and hangs together: its services, the collector's pipeline,
Prometheus's targets and Grafana's provisioning (``docker compose config`` is not available here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"
PROFILE = {"otel-collector", "jaeger", "prometheus", "grafana"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_the_profile_services_start_only_with_the_profile_and_mount_files_that_exist() -> None:
    services = compose()["services"]
    assert set(services) >= PROFILE
    for name, service in services.items():
        assert (service.get("profiles") == ["observability"]) == (name in PROFILE), name
        for dependency in service.get("depends_on") or []:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_aob_services_export_traces_only_when_an_endpoint_is_given() -> None:
    services = compose()["services"]
    environment = services["coordinator"]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    # Every aob service shares the anchor's environment (the orchestrator and fanout extend it).
    for name in ("orchestrator", "fanout", "worker-agent", "worker-http"):
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services[name]["environment"], name


def test_the_collector_takes_otlp_http_and_sends_traces_to_jaeger() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    for exporter in traces["exporters"]:
        host = config["exporters"][exporter]["endpoint"].split(":")[0]
        assert host in compose()["services"]


def test_prometheus_scrapes_the_processes_that_serve_metrics() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = config["scrape_configs"]
    targets = {t for job in jobs for group in job.get("static_configs", []) for t in group["targets"]}
    discovered = {f"{n}:{sd['port']}" for job in jobs for sd in job.get("dns_sd_configs", []) for n in sd["names"]}
    assert targets == {"orchestrator:8080", "fanout:8081"}
    services = compose()["services"]
    # Every coordinator and worker service is scraped on the ops port the shared environment gives them.
    ops_port = services["coordinator"]["environment"]["AOB_OPS_PORT"]
    engine = {
        name
        for name, s in services.items()
        if s.get("command", [""])[:2] in (["aob", "coordinator"], ["aob", "worker"])
    }
    assert discovered == {f"{name}:{ops_port}" for name in engine}
    for target in targets | discovered:
        assert target.split(":")[0] in services


def test_grafana_provisions_the_dashboard_with_the_data_sources_it_uses() -> None:
    provisioning = OBSERVABILITY / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())["datasources"]
    uids = {source["uid"] for source in sources}
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())["providers"]
    mounted = {v.split(":")[1] for v in compose()["services"]["grafana"]["volumes"]}
    assert {provider["options"]["path"] for provider in providers} <= mounted
    dashboard = json.loads((OBSERVABILITY / "grafana" / "dashboards" / "aob.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        assert all(target["expr"] for target in panel["targets"])
