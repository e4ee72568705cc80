"""Strict offline validation of Kubernetes manifests for the tests (tests/test_cluster_backends.py); not part of
the runtime package.

Core objects are checked against the Kubernetes API models that ship with the official ``kubernetes`` Python
client (field names and types, recursively: an unknown or misspelt field fails), plus the enums the models do
not encode; required fields are checked by deserialising into those models. The dask-kubernetes custom
resources (DaskCluster, DaskWorkerGroup, DaskJob, DaskAutoscaler) are checked against the CRD OpenAPI schemas
shipped in the ``dask-kubernetes`` package, with their embedded pod specs checked like core pods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from heattrack.errors import InputError


class ManifestError(InputError):
    """A manifest that the Kubernetes API would reject."""


CORE_KINDS = {  # kind -> (apiVersion, client model)
    "CronJob": ("batch/v1", "V1CronJob"), "Job": ("batch/v1", "V1Job"),
    "ServiceAccount": ("v1", "V1ServiceAccount"), "PersistentVolumeClaim": ("v1", "V1PersistentVolumeClaim"), "ConfigMap": ("v1", "V1ConfigMap"), "Secret": ("v1", "V1Secret"),
    "Role": ("rbac.authorization.k8s.io/v1", "V1Role"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "V1RoleBinding"),
}
DASK_KINDS = {"DaskCluster": "daskcluster.yaml", "DaskWorkerGroup": "daskworkergroup.yaml",
              "DaskJob": "daskjob.yaml", "DaskAutoscaler": "daskautoscaler.yaml"}
ENUMS = {
    "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
    "restartPolicy": {"Always", "OnFailure", "Never"},
    "concurrencyPolicy": {"Allow", "Forbid", "Replace"},
    "protocol": {"TCP", "UDP", "SCTP"},
    "dnsPolicy": {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"},
}
_SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def _check(value: Any, type_name: str, where: str) -> None:
    from kubernetes import client as k8s

    low = type_name.lower()
    if low.startswith("list["):
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list")
        for i, v in enumerate(value):
            _check(v, type_name[5:-1], f"{where}[{i}]")
    elif low.startswith(("dict(", "dict[")):
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected a mapping")
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            _check(v, inner, f"{where}.{k}")
    elif type_name in _SCALARS:
        if not isinstance(value, _SCALARS[type_name]) or (type_name != "bool" and isinstance(value, bool)):
            raise ManifestError(f"{where}: expected {type_name}, got {value!r}")
    elif type_name in ("object", "datetime", "date"):
        return
    else:
        model = getattr(k8s, type_name)
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected a {type_name} mapping")
        fields = {model.attribute_map[k]: t for k, t in model.openapi_types.items()}
        for key, v in value.items():
            if key not in fields:
                raise ManifestError(f"{where}.{key}: unknown field of {type_name}")
            if key in ENUMS and v not in ENUMS[key]:
                raise ManifestError(f"{where}.{key}: {v!r} is not one of {sorted(ENUMS[key])}")
            _check(v, fields[key], f"{where}.{key}")


def _deserialise(doc: dict, model: str, where: str) -> None:
    from kubernetes import client as k8s

    try:
        k8s.ApiClient()._ApiClient__deserialize(doc, model)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{where}: {exc}") from None


def validate_pod_spec(spec: dict, where: str = "pod spec") -> None:
    """Check a pod spec (e.g. inside a DaskCluster) strictly against ``V1PodSpec``."""
    _check(spec, "V1PodSpec", where)
    _deserialise(spec, "V1PodSpec", where)


def _crd_validator(file: str):
    """jsonschema validator of a dask-kubernetes CRD. Its ``$ref``s to the operator's templates.yaml resolve to
    the packaged file; those to core Kubernetes schemas (PodSpec, ServiceSpec) resolve to ``type: object`` and
    the embedded pod specs are checked separately against the client models (:func:`validate_pod_spec`)."""
    import dask_kubernetes
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    folder = Path(dask_kubernetes.__file__).parent / "operator" / "customresources"
    templates = yaml.safe_load((folder / "templates.yaml").read_text())

    class _AnyObject(dict):
        def __missing__(self, key):
            return {"type": "object"}

    def retrieve(uri: str):
        if uri.endswith("customresources/templates.yaml"):
            return Resource.from_contents(templates, default_specification=DRAFT7)
        return Resource.from_contents({"definitions": _AnyObject()}, default_specification=DRAFT7)

    crd = yaml.safe_load((folder / file).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema, registry=Registry(retrieve=retrieve))


def _pod_specs(doc: dict) -> list[tuple[str, dict]]:
    spec = doc.get("spec", {})
    out = []
    for role in ("worker", "scheduler"):
        if isinstance(spec.get(role), dict) and "spec" in spec[role]:
            out.append((f"spec.{role}.spec", spec[role]["spec"]))
    if isinstance(spec.get("job"), dict) and "spec" in spec["job"]:
        out.append(("spec.job.spec", spec["job"]["spec"]))
    return out


def validate_manifest(doc: dict, where: str = "manifest") -> None:
    """Validate one manifest document; raises :class:`ManifestError` naming the first problem."""
    import jsonschema

    kind, api = doc.get("kind"), doc.get("apiVersion")
    where = f"{where} ({kind} {doc.get('metadata', {}).get('name')})"
    if kind in CORE_KINDS:
        want_api, model = CORE_KINDS[kind]
        if api != want_api:
            raise ManifestError(f"{where}: apiVersion {api!r}, expected {want_api!r}")
        _check(doc, model, where)
        _deserialise(doc, model, where)
    elif kind in DASK_KINDS:
        if api != "kubernetes.dask.org/v1":
            raise ManifestError(f"{where}: apiVersion {api!r}, expected 'kubernetes.dask.org/v1'")
        try:
            _crd_validator(DASK_KINDS[kind]).validate(doc)
        except jsonschema.ValidationError as exc:
            raise ManifestError(f"{where}: {exc.message} at {'/'.join(map(str, exc.absolute_path))}") from None
        for path, pod in _pod_specs(doc):
            validate_pod_spec(pod, f"{where} {path}")
    else:
        raise ManifestError(f"{where}: kind {kind!r} is not one heattrack ships or knows how to validate")


def validate_files(paths: list[Path]) -> int:
    """Validate every YAML document in ``paths`` (kustomization.yaml files are skipped); returns the count."""
    n = 0
    for path in paths:
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                validate_manifest(doc, str(path))
                n += 1
    return n
