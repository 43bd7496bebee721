"""infra/: the image and the topologies name only real settings, files and pools."""

from __future__ import annotations

import re

import yaml

from core.config import PROJECT_ROOT
from core.settings import ENV_KEYS

INFRA = PROJECT_ROOT / "infra"
_OTHERS = ("PREFECT_", "AWS_", "JOBPIPES_", "POSTGRES_", "MINIO_")


def _known(name: str) -> bool:
    return name in ENV_KEYS or name.startswith(_OTHERS)


def test_every_variable_of_the_compose_file_and_the_kubernetes_config_is_a_real_setting():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        unknown = [k for k in (service.get("environment") or {}) if not _known(k)]
        assert not unknown, (name, unknown)
    manifests = list(yaml.safe_load_all((INFRA / "kubernetes" / "jobpipes.yaml").read_text()))
    [config] = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert [k for k in config["data"] if not _known(k)] == []
    secrets = re.findall(r"--from-literal=([A-Z_]+)=", (INFRA / "kubernetes" / "jobpipes.yaml").read_text())
    assert secrets and [k for k in secrets if not _known(k)] == []


def test_workers_everywhere_serve_the_pool_that_prefect_yaml_deploys_to():
    pool = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["definitions"]["work_pool"]["name"]
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert f'"--pool", "{pool}"' in dockerfile
    for copied in re.findall(r"^COPY (\S+) (\S+) \./$", dockerfile, re.M):
        assert all((PROJECT_ROOT / f).exists() for f in copied)
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    assert f"--pool {pool}" in compose["services"]["worker"]["command"]
    manifests = list(yaml.safe_load_all((INFRA / "kubernetes" / "jobpipes.yaml").read_text()))
    [worker] = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "worker"]
    assert pool in worker["spec"]["template"]["spec"]["containers"][0]["command"]
