"""deploy/kubernetes renders, every object validates against the Kubernetes schemas, and it runs what aob needs: every
service with probes and resources, an autoscaler per worker type on the queue depth the code exports, the agent Job
RBAC the runtime's requests need, and default-deny network policies."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.ops_settings import OpsEndpointFields
from common.queue_depth import QUEUE_DEPTH_METRIC
from common.settings import ApiSettings, CoordinatorSettings, FanoutSettings, WorkerSettings
from common.workflow.ir import WORKER_TYPES
from orchestrator.cli import build_parser
from tests.support.kubernetes_requests import Permission, runtime_permissions
from tests.support.kustomize import containers, load_documents, pod_spec, render

BASE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
SECRET_EXAMPLE = BASE / "secret.example.yaml"
# The oldest Kubernetes the manifests are for, and the newest the validator knows.
VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
SERVICES = {"orchestrator": ["orchestrator"], "fanout": ["fanout"], "coordinator": ["coordinator"]} | {
    f"worker-{worker_type}": ["worker", worker_type] for worker_type in WORKER_TYPES
}
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10"]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(BASE)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = by_kind(objects, "ConfigMap")["aob"]["data"]
    return data


def test_every_manifest_file_is_rendered_or_is_the_secret_example() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    files = {path.name for path in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert files - listed == {SECRET_EXAMPLE.name}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_kubernetes(objects: list[dict[str, Any]], version: str) -> None:
    everything = objects + load_documents(SECRET_EXAMPLE) + render(BASE / "monitoring")
    errors = []
    for obj in everything:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors
    assert len(everything) > 30


def test_each_service_runs_as_a_deployment_of_the_aob_command_it_needs(objects: list[dict[str, Any]]) -> None:
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {f"aob-{service}" for service in SERVICES}
    for service, args in SERVICES.items():
        (container,) = deployments[f"aob-{service}"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == args
        assert container["image"] == "aob:0.1.0"
        # The arguments parse as the `aob` command line does.
        build_parser().parse_args(container["args"])
    (migrate,) = by_kind(objects, "Job")["aob-migrate"]["spec"]["template"]["spec"]["containers"]
    assert build_parser().parse_args(migrate["args"]).command == "migrate"


def test_every_container_has_probes_on_its_ports_resources_and_no_privileges(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            where = f"{obj['metadata']['name']}/{container['name']}"
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, where
            if obj["kind"] != "Deployment":
                continue
            ports = {port["name"] for port in container["ports"]}
            probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
            for probe, path in probes.items():
                assert container[probe]["httpGet"]["path"] == path, where
                assert container[probe]["httpGet"]["port"] in ports, where


def test_the_probed_ports_are_the_ones_the_processes_listen_on(objects: list[dict[str, Any]]) -> None:
    settings = config(objects)
    listen = {
        "orchestrator": ApiSettings.model_fields["api_port"].default,
        "fanout": FanoutSettings.model_fields["fanout_port"].default,
    }
    for name, deployment in by_kind(objects, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        service = name.removeprefix("aob-")
        expected = listen.get(service, int(settings["AOB_OPS_PORT"]))
        assert [port["containerPort"] for port in container["ports"]] == [expected], name
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(expected)
    for host in ("AOB_API_HOST", "AOB_FANOUT_HOST", "AOB_OPS_HOST"):
        assert settings[host] == "0.0.0.0"


def test_the_config_and_the_secret_hold_only_settings_aob_reads(objects: list[dict[str, Any]]) -> None:
    known = {
        f"AOB_{name.upper()}"
        for cls in (ApiSettings, CoordinatorSettings, WorkerSettings, FanoutSettings, OpsEndpointFields)
        for name in cls.model_fields
    }
    secret = load_documents(SECRET_EXAMPLE)[0]["stringData"]
    env = {item["name"] for container in containers(objects) for item in container.get("env", [])}
    assert set(config(objects)) | set(secret) | env <= known
    for container in containers(objects):
        assert container["envFrom"] == [{"configMapRef": {"name": "aob"}}, {"secretRef": {"name": "aob"}}]


def test_each_worker_type_scales_on_its_queue_depth_through_the_adapter_rule(objects: list[dict[str, Any]]) -> None:
    autoscalers = by_kind(objects, "HorizontalPodAutoscaler")
    (adapter,) = render(BASE / "monitoring")
    (rule,) = yaml.safe_load(adapter["data"]["config.yaml"])["externalRules"]
    assert rule["name"]["as"] == QUEUE_DEPTH_METRIC and QUEUE_DEPTH_METRIC in rule["seriesQuery"]
    # Every orchestrator pod exports the same figure: one series per type, never a sum over pods.
    assert rule["metricsQuery"].startswith("max by (type)")
    for worker_type in WORKER_TYPES:
        name = f"aob-worker-{worker_type}"
        hpa = autoscalers[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        (metric,) = hpa["metrics"]
        assert metric["type"] == "External"
        selector = {"matchLabels": {"type": worker_type}}
        assert metric["external"]["metric"] == {"name": QUEUE_DEPTH_METRIC, "selector": selector}
        assert metric["external"]["target"]["type"] == "AverageValue"
        assert int(metric["external"]["target"]["averageValue"]) >= 1
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    # `kubectl apply` of a replica count would undo the autoscaler's.
    for name, deployment in by_kind(objects, "Deployment").items():
        assert ("replicas" in deployment["spec"]) == (name not in autoscalers), name


async def test_the_agent_role_grants_exactly_what_the_runtimes_requests_need(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = config(objects)["AOB_AGENT_K8S_NAMESPACE"]
    needed = await runtime_permissions(namespace, monkeypatch)
    role = by_kind(objects, "Role")["aob-agent-jobs"]
    assert role["metadata"]["namespace"] == namespace
    granted = {
        Permission(group, resource, verb, namespace)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # The attach is also granted as create, the verb newer API servers check websocket upgrades as.
    assert granted == needed | {Permission("", "pods/attach", "create", namespace)}
    binding = by_kind(objects, "RoleBinding")["aob-agent-jobs"]
    agent_pod = by_kind(objects, "Deployment")["aob-worker-agent"]["spec"]["template"]["spec"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": agent_pod["serviceAccountName"], "namespace": "aob"}
    ]
    assert agent_pod["automountServiceAccountToken"] is True
    assert namespace in by_kind(objects, "Namespace")
    # No other pod holds a token.
    for name, deployment in by_kind(objects, "Deployment").items():
        if name != "aob-worker-agent":
            assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False, name


def test_network_policies_deny_by_default_and_keep_outbound_http_off_private_addresses(
    objects: list[dict[str, Any]],
) -> None:
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    for namespace in by_kind(objects, "Namespace"):
        assert any(
            policy["metadata"]["namespace"] == namespace
            and policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            for policy in policies
        ), namespace
    (internet,) = [policy for policy in policies if policy["metadata"]["name"] == "aob-internet-egress"]
    selected = internet["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert {"worker-http", "worker-agent"} <= set(selected)
    assert "worker-builtin" not in selected
    for block in [peer["ipBlock"] for rule in internet["spec"]["egress"] for peer in rule["to"]]:
        everything = ipaddress.ip_network(block["cidr"])
        excluded = [ipaddress.ip_network(cidr) for cidr in block["except"]]
        for private in map(ipaddress.ip_network, PRIVATE):
            if private.version == everything.version:
                assert any(private.subnet_of(net) for net in excluded), (block["cidr"], str(private))
    ingress = {
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: policy["spec"]["ingress"]
        for policy in policies
        if "Ingress" in policy["spec"]["policyTypes"] and "matchLabels" in policy["spec"]["podSelector"]
        if "app.kubernetes.io/component" in policy["spec"]["podSelector"]["matchLabels"]
    }
    assert ingress["orchestrator"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert ingress["fanout"] == [{"ports": [{"protocol": "TCP", "port": 8081}]}]
