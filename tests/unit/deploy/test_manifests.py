"""The compose file, the Kubernetes manifests and the image, checked by parsing (no Docker here)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schemas.config import load_config
from schemas.settings import Settings
from usage_stream.cli import parser

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORTS = {"collector": 8080, "worker": 8081}


def cli_command(args: list[str]) -> str:
    """The subcommand a container runs; fails unless `usage-stream` accepts it."""
    parsed = parser().parse_args(args)
    return str(parsed.command)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What a process would make of this environment: every USAGE_STREAM_ name must be known."""
    prefix = "USAGE_STREAM_"
    unknown = {k for k in env if k.startswith(prefix)} - {
        prefix + name.upper() for name in Settings.model_fields
    }
    assert unknown == set()
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    return Settings()


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


# -- compose -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_runs_every_part_of_the_stack(compose: dict[str, Any]) -> None:
    assert {"kafka", "clickhouse", "collector", "worker", "prometheus", "grafana"} <= set(
        compose["services"]
    )
    assert {name: cli_command(s["command"]) for name, s in ours(compose).items()} == {
        "collector": "collector",
        "worker": "worker",
        "migrate": "migrate",
    }


def test_compose_images_are_pinned_and_builds_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        else:
            image = service["image"]
            assert re.fullmatch(r"[a-z0-9./-]+:v?[0-9][\w.-]*", image), (name, image)


def test_compose_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", [])) <= set(services), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
        for path in service.get("env_file", []):
            assert (DEPLOY / f"{path}.example").is_file(), (name, path)


def test_compose_settings_are_valid_and_consistent(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    secrets = env_file(DEPLOY / "usage-stream.env.example")
    kafka_listener = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("collector", "worker"):
        service = services[name]
        settings = settings_from({**secrets, **service["environment"]}, monkeypatch)
        port = getattr(settings, f"{name}_port")
        assert port == PORTS[name]
        assert getattr(settings, f"{name}_host") == "0.0.0.0"
        assert all(p.endswith(f":{port}") for p in service["ports"]), name
        assert f"{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert kafka_listener == f"PLAINTEXT://{settings.kafka_bootstrap}"
        clickhouse = urlsplit(settings.clickhouse_url)
        assert (clickhouse.hostname, clickhouse.port) == ("clickhouse", 8123)
        assert clickhouse.username == services["clickhouse"]["environment"]["CLICKHOUSE_USER"]
        assert settings.write_keys and settings.read_keys
    assert secrets["CLICKHOUSE_PASSWORD"] == secrets["USAGE_STREAM_CLICKHOUSE_PASSWORD"]


def test_compose_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    for job in scrape["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        (service,) = sd["names"]
        assert service in compose["services"], job["job_name"]
        assert job["job_name"] == f"usage-stream-{service}"
        assert sd["port"] == PORTS[service]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts


def test_compose_config_file_is_a_valid_product_config(compose: dict[str, Any]) -> None:
    (mount,) = [v for v in ours(compose)["worker"]["volumes"] if v.endswith(".toml:ro")]
    source, target, _ = mount.split(":")
    assert ours(compose)["worker"]["environment"]["USAGE_STREAM_CONFIG_FILE"] == target
    assert load_config(DEPLOY / source).meters


# -- the image ---------------------------------------------------------------------------------


def test_the_image_installs_the_project_and_runs_the_cli() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), source
    found = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)
    assert found is not None
    entrypoint = json.loads(found[1])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert entrypoint == ["usage-stream"] and "usage-stream" in project["scripts"]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in packages["packages"]["find"]["include"]:
        assert f"COPY {package.rstrip('*')} " in dockerfile, package


# -- Kubernetes --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        documents += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), document
    return documents


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def test_collector_and_worker_are_separately_scalable_deployments(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == {"usage-stream-collector", "usage-stream-worker"}
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, name
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        (container,) = spec["template"]["spec"]["containers"]
        assert cli_command(container["args"]) == labels["app.kubernetes.io/component"]
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")["usage-stream-collector"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "usage-stream-collector"


def test_every_deployment_probes_healthz_and_readyz_on_its_port(
    manifests: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    configmap = of_kind(manifests, "ConfigMap")["usage-stream-env"]["data"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    for deployment in of_kind(manifests, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        component = container["args"][0]
        (port,) = container["ports"]
        assert port["containerPort"] == PORTS[component]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"usage-stream-env", secret["metadata"]["name"]}
        env = {e["name"]: e["value"] for e in container["env"]}
        settings = settings_from({**configmap, **secret["stringData"], **env}, monkeypatch)
        assert getattr(settings, f"{component}_port") == PORTS[component]
        assert getattr(settings, f"{component}_host") == "0.0.0.0"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert str(settings.config_file).startswith(mounts["product"])
        assert str(settings.data_dir) == mounts["state"]  # writable: faust keeps state there


def test_workers_do_not_outnumber_partitions(manifests: list[dict[str, Any]]) -> None:
    configmap = of_kind(manifests, "ConfigMap")["usage-stream-env"]["data"]
    worker = of_kind(manifests, "Deployment")["usage-stream-worker"]
    assert worker["spec"]["replicas"] <= int(configmap["USAGE_STREAM_TOPIC_PARTITIONS"])


def test_services_select_pods_that_exist(manifests: list[dict[str, Any]]) -> None:
    pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(manifests, "Deployment").values()
    ]
    for name, service in of_kind(manifests, "Service").items():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), name
    for name, budget in of_kind(manifests, "PodDisruptionBudget").items():
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods), name


def test_prometheus_finds_every_pod_through_headless_services(
    manifests: list[dict[str, Any]],
) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    namespace = kustomization["namespace"]
    services = of_kind(manifests, "Service")
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus-kubernetes.yml").read_text())
    for job in scrape["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        (host,) = sd["names"]
        name, ns, *_ = host.split(".")
        assert ns == namespace
        service = services[name]["spec"]
        assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
        assert service["ports"][0]["port"] == sd["port"]
        assert (
            job["job_name"] == f"usage-stream-{service['selector']['app.kubernetes.io/component']}"
        )


def test_k8s_product_config_is_valid(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    product = of_kind(manifests, "ConfigMap")["usage-stream-product"]["data"]["config.toml"]
    (tmp_path / "config.toml").write_text(product)
    assert load_config(tmp_path / "config.toml").meters


def test_migration_job_runs_the_migrate_command(manifests: list[dict[str, Any]]) -> None:
    job = of_kind(manifests, "Job")["usage-stream-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert cli_command(container["args"]) == "migrate"
