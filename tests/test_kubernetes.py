"""`service print --kubernetes` (issue #14): manifests that parse, that match the
Kubernetes API schema field by field, and that run the guard with no privileges."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from conftest import Run
from ollama_resident import profiles
from ollama_resident.kube import POD_OLLAMA_HOST, resource_name

ROOT = Path(__file__).resolve().parent.parent


def _write(home: Path, text: str) -> None:
    (home / "profiles.toml").write_text(text)


PROFILES = """\
[profiles.work]
host = "http://gpu-box:11434"
keep_alive = "forever"
models = ["llama3.2", { name = "nomic-embed-text", keep_alive = "30m" }]

[profiles."we\\"ird: name $(x)"]
models = ["tiny"]
"""


@pytest.fixture
def printed(cli, isolated_env: Path) -> str:
    _write(isolated_env, PROFILES)
    run: Run = cli("service", "print", "--kubernetes", "-p", "work", "-p", 'we"ird: name $(x)')
    assert run.exit_code == 0, run
    return run.stdout


@pytest.fixture
def manifests(printed: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(printed) if d is not None]


def _roundtrip(doc: dict[str, Any], kind: str) -> Any:
    """Through the API's own models (generated from its OpenAPI schema) and back.

    A field the schema does not have is dropped, a wrong type raises: either way the
    result differs from the input.
    """
    api = ApiClient()
    model = api._ApiClient__deserialize(doc, kind)  # type: ignore[attr-defined]
    return api.sanitize_for_serialization(model)


def test_manifests_match_the_api_schema(manifests):
    kinds = [d["kind"] for d in manifests]
    assert kinds == ["ConfigMap", "Deployment"]
    config_map, deployment = manifests
    assert _roundtrip(config_map, "V1ConfigMap") == config_map
    assert _roundtrip(deployment, "V1Deployment") == deployment


def test_the_sidecar_is_unprivileged_and_sized(manifests):
    _cm, deployment = manifests
    pod = deployment["spec"]["template"]["spec"]
    guard = next(c for c in pod["containers"] if c["name"] == "ollama-resident")
    sc = guard["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = guard["resources"]
    assert resources["requests"] == {"cpu": "10m", "memory": "64Mi"}
    assert "cpu" not in resources["limits"]  # a throttled guard is only late
    # Talks to the Ollama of its own pod; writes only to its emptyDir.
    env = {e["name"]: e["value"] for e in guard["env"]}
    assert env["OLLAMA_HOST"] == POD_OLLAMA_HOST == "http://127.0.0.1:11434"
    mounts = {m["mountPath"]: m for m in guard["volumeMounts"]}
    assert mounts["/etc/ollama-resident"]["readOnly"] is True
    assert env["OLLAMA_RESIDENT_HOME"] in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[env["OLLAMA_RESIDENT_HOME"]]["name"]]
    assert guard["ports"] == [{"name": "metrics", "containerPort": 9778, "protocol": "TCP"}]
    ollama = next(c for c in pod["containers"] if c["name"] == "ollama")
    assert ollama["image"].startswith("ollama/ollama")


def test_profiles_travel_in_the_config_map_with_the_pod_host(manifests):
    config_map, deployment = manifests
    assert config_map["metadata"]["name"] == "ollama-resident-work-we-ird-name-x"
    assert resource_name("ollama-resident", ["work", 'we"ird: name $(x)']) == (
        "ollama-resident-work-we-ird-name-x"
    )
    text = config_map["data"]["profiles.toml"]
    pf = profiles.load_text(text, "profiles.toml")
    assert pf.names == ["work", 'we"ird: name $(x)']
    assert {p.host for p in pf.profiles.values()} == {POD_OLLAMA_HOST}
    assert [m.name for m in pf.get("work").models] == ["llama3.2", "nomic-embed-text"]
    pod = deployment["spec"]["template"]["spec"]
    guard = next(c for c in pod["containers"] if c["name"] == "ollama-resident")
    # Every hostile word reaches the guard literally, one argument each.
    assert guard["args"][:5] == ["guard", "--profile", "work", "--profile", 'we"ird: name $(x)']
    assert "--metrics-port" in guard["args"]
    bound = {v["name"]: v for v in pod["volumes"]}["ollama-resident-profiles"]
    assert bound["configMap"]["name"] == config_map["metadata"]["name"]
    env = {e["name"]: e["value"] for e in guard["env"]}
    assert env["OLLAMA_RESIDENT_PROFILES"] == "/etc/ollama-resident/profiles.toml"


def test_image_option_and_unknown_profile(cli, isolated_env: Path):
    _write(isolated_env, PROFILES)
    run = cli("service", "print", "--kubernetes", "-p", "work", "--image", "reg.example/o-r:1")
    doc = list(yaml.safe_load_all(run.stdout))[1]
    images = [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
    assert images == ["ollama/ollama:latest", "reg.example/o-r:1"]
    assert cli("service", "print", "--kubernetes", "-p", "nope").exit_code == 2
    assert cli("service", "print", "--systemd", "-p", "work", "--image", "x").exit_code == 2
    run = cli("service", "install", "--kubernetes", "-p", "work")
    assert run.exit_code == 2
    assert "kubectl apply -f -" in run.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_them(printed: str, tmp_path: Path):
    """kubectl decodes every object (client side; no cluster here for --dry-run)."""
    path = tmp_path / "m.yaml"
    path.write_text(printed)
    out = subprocess.run(
        ["kubectl", "label", "--local", "-f", str(path), "-o", "name", "checked=yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "configmap/ollama-resident-work-we-ird-name-x",
        "deployment.apps/ollama",
    ]


def test_dockerfile_builds_a_small_unprivileged_image():
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("slim" in f for f in froms)  # build stage, then runtime
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    assert user[-1].split()[1].split(":")[0] == "10001"  # the UID the manifests run as
    entry = [ln for ln in lines if ln.startswith("ENTRYPOINT ")]
    assert entry and json.loads(entry[-1].split(" ", 1)[1]) == ["ollama-resident"]
    assert (ROOT / ".dockerignore").exists()


def _yaml_blocks(doc: str) -> list[Any]:
    text = (ROOT / "docs" / doc).read_text()
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_helm_values_in_the_docs_hold_a_valid_sidecar():
    [values] = _yaml_blocks("kubernetes.md")
    [sidecar] = values["initContainers"]
    assert _roundtrip(sidecar, "V1Container") == sidecar
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar, not a one-shot init
    for volume in values["volumes"]:
        assert _roundtrip(volume, "V1Volume") == volume
    [config_map] = values["extraObjects"]
    assert _roundtrip(config_map, "V1ConfigMap") == config_map
    pf = profiles.load_text(config_map["data"]["profiles.toml"], "profiles.toml")
    assert pf.get("work").host == POD_OLLAMA_HOST


def test_metrics_docs_scrape_config_and_rules_parse():
    scrape, rules = _yaml_blocks("metrics.md")
    assert scrape["scrape_configs"][0]["job_name"] == "ollama-resident"
    alerts = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert set(alerts) == {"OllamaModelLostItsPin", "OllamaHostDown"}
    assert alerts["OllamaModelLostItsPin"]["for"] == "5m"
    assert "ollama_resident_model_pinned" in alerts["OllamaModelLostItsPin"]["expr"]
    assert "ollama_resident_host_up" in alerts["OllamaHostDown"]["expr"]
