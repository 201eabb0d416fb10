"""Renders a kustomization as ``kubectl apply -k`` would, for the few kustomize features deploy/kubernetes uses:
``resources`` (files, or directories holding a kustomization) and ``images``. Any other field is refused, so a
manifest change that needs more of kustomize fails its test here rather than being checked half."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "images"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML file (documents holding only comments are skipped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``directory``'s kustomization.yaml builds, with its image names replaced."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise ValueError(f"{directory}/kustomization.yaml: fields {sorted(unsupported)} are not rendered here")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else load_documents(path)
    images = {image["name"]: image for image in kustomization.get("images", [])}
    for container in containers(objects):
        image = images.get(container["image"])
        if image is not None:
            container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objects


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment or Job, else None."""
    if obj["kind"] in ("Deployment", "Job"):
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every container (init containers too) of every pod template in ``objects``."""
    found = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            found += spec.get("initContainers", []) + spec["containers"]
    return found
