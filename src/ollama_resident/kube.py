"""Kubernetes manifests for a ``guard`` sidecar next to Ollama in the same pod.

Pure text generation, like :mod:`ollama_resident.service`. Every replica of an
Ollama Deployment has its own memory, so the guard runs *in* each pod and talks
to ``127.0.0.1:11434``; the profiles travel in a ConfigMap, rewritten to that
address. The container runs with no privileges (non-root, read-only root
filesystem, every capability dropped, no privilege escalation, the runtime's
seccomp profile) and asks for what a guard uses: a few millicores and tens of
MiB. Its metrics port is open to the pod network for Prometheus.

Strings are written as JSON strings, which are valid YAML double-quoted scalars,
so no profile name or image reference can break out of its field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "GUARD_RESOURCES",
    "METRICS_PORT",
    "POD_OLLAMA_HOST",
    "KubeOptions",
    "guard_container",
    "kubernetes_manifests",
    "resource_name",
]

# Inside the pod Ollama is on loopback: the sidecar shares the pod's network namespace.
POD_OLLAMA_HOST = "http://127.0.0.1:11434"
METRICS_PORT = 9778
CONFIG_DIR = "/etc/ollama-resident"
STATE_DIR = "/var/lib/ollama-resident"
# Measured: a guard polling every 0.5 s holds ~30 MiB RSS (metrics served or not) and uses
# under 10 % of a core (far less at the 5 s default); a load costs it nothing but waiting.
# No CPU limit: a throttled guard would only be late, and a limit this small throttles for
# no gain.
GUARD_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
# The image's user (see the Dockerfile): any non-zero UID works with runAsNonRoot.
GUARD_UID = 10001
# The journal rotates at 1 MiB keeping two older files; room for that and the lock files.
STATE_SIZE_LIMIT = "16Mi"


@dataclass(frozen=True)
class KubeOptions:
    """What varies between clusters: the guard's image, Ollama's image, names."""

    image: str
    ollama_image: str = "ollama/ollama:latest"
    name: str = "ollama"  # the Deployment (and its app label)
    metrics_port: int = METRICS_PORT
    interval: float = 5.0


def _q(value: str) -> str:
    """A YAML scalar that is always a string, whatever ``value`` holds.

    >>> _q("yes"), _q('a"b')
    ('"yes"', '"a\\\\"b"')
    """
    return json.dumps(value, ensure_ascii=False)


def resource_name(prefix: str, words: Sequence[str]) -> str:
    """A DNS-1123 name (lowercase, digits, '-', at most 63) from ``prefix`` and ``words``.

    >>> resource_name("ollama-resident", ["Work", "GPU box/2"])
    'ollama-resident-work-gpu-box-2'
    >>> resource_name("ollama-resident", ["!!!"])
    'ollama-resident-profile'
    """
    slug = "-".join(re.sub(r"[^a-z0-9]+", "-", w.lower()).strip("-") for w in words)
    slug = re.sub(r"-+", "-", slug).strip("-") or "profile"
    return f"{prefix}-{slug}"[:63].rstrip("-")


def _block(text: str, indent: int) -> str:
    """``text`` as a YAML literal block (``|``), or a JSON string when a block cannot hold it."""
    lines = text.rstrip("\n").split("\n")
    plain = all(line.isprintable() and line == line.rstrip() for line in lines)
    if not plain or not lines[0] or lines[0][0] == " ":
        return _q(text)
    pad = " " * indent
    return "|\n" + "\n".join(pad + line if line else "" for line in lines)


def guard_container(profiles: Sequence[str], opts: KubeOptions) -> str:
    """The sidecar container, as a YAML list item indented for ``spec.containers``.

    It mounts the volumes ``ollama-resident-profiles`` (the ConfigMap) and
    ``ollama-resident-state`` (an emptyDir for the journal), which the pod declares.
    """
    args = ["guard"]
    for p in profiles:
        args += ["--profile", p]
    args += [
        "--wait",
        "300",
        "--interval",
        f"{opts.interval:g}",
        "--metrics-port",
        str(opts.metrics_port),
        "--metrics-host",
        "0.0.0.0",
    ]
    arg_lines = "\n".join(f"            - {_q(a)}" for a in args)
    req, lim = GUARD_RESOURCES["requests"], GUARD_RESOURCES["limits"]
    return f"""        - name: ollama-resident
          image: {_q(opts.image)}
          imagePullPolicy: IfNotPresent
          args:
{arg_lines}
          env:
            - name: OLLAMA_HOST
              value: {_q(POD_OLLAMA_HOST)}
            - name: OLLAMA_RESIDENT_PROFILES
              value: {_q(CONFIG_DIR + "/profiles.toml")}
            - name: OLLAMA_RESIDENT_HOME
              value: {_q(STATE_DIR)}
          ports:
            - name: metrics
              containerPort: {opts.metrics_port}
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 30
            timeoutSeconds: 5
            failureThreshold: 3
          resources:
            requests:
              cpu: {_q(req["cpu"])}
              memory: {_q(req["memory"])}
            limits:
              memory: {_q(lim["memory"])}
          securityContext:
            runAsNonRoot: true
            runAsUser: {GUARD_UID}
            runAsGroup: {GUARD_UID}
            allowPrivilegeEscalation: false
            privileged: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: ollama-resident-profiles
              mountPath: {_q(CONFIG_DIR)}
              readOnly: true
            - name: ollama-resident-state
              mountPath: {_q(STATE_DIR)}"""


def kubernetes_manifests(profiles: Sequence[str], profiles_toml: str, opts: KubeOptions) -> str:
    """A ConfigMap with ``profiles_toml`` and a Deployment of Ollama plus the guard sidecar.

    ``profiles_toml`` is the profiles file the sidecar reads: the named profiles,
    each with ``host`` set to :data:`POD_OLLAMA_HOST` by the caller.
    """
    config_map = resource_name("ollama-resident", profiles)
    names = ", ".join(json.dumps(p, ensure_ascii=False) for p in profiles)
    name = _q(opts.name)
    return f"""# Ollama with an ollama-resident guard sidecar keeping profile {names} loaded.
# Generated by `ollama-resident service print --kubernetes`; regenerate rather than edit.
# Each replica keeps its own models: the guard runs in every pod, next to Ollama.
# Build the guard's image from the Dockerfile of ollama-resident (docs/kubernetes.md).
apiVersion: v1
kind: ConfigMap
metadata:
  name: {_q(config_map)}
  labels:
    app.kubernetes.io/name: ollama-resident
    app.kubernetes.io/component: guard
data:
  profiles.toml: {_block(profiles_toml, 4)}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "{opts.metrics_port}"
        prometheus.io/path: /metrics
    spec:
      containers:
        - name: ollama
          image: {_q(opts.ollama_image)}
          ports:
            - name: http
              containerPort: 11434
              protocol: TCP
          volumeMounts:
            - name: ollama-data
              mountPath: /root/.ollama
{guard_container(profiles, opts)}
      volumes:
        - name: ollama-data
          emptyDir: {{}}
        - name: ollama-resident-profiles
          configMap:
            name: {_q(config_map)}
        - name: ollama-resident-state
          emptyDir:
            sizeLimit: {_q(STATE_SIZE_LIMIT)}
"""
