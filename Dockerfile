# A small image of ollama-resident, for the guard sidecar (docs/kubernetes.md) or compose.
#   docker build -t ollama-resident:0.1.0 .
#   docker run --rm ollama-resident:0.1.0 ps --host http://ollama:11434
# Runs as an unprivileged user (UID 10001, the UID the Kubernetes manifests expect) and
# writes nothing outside OLLAMA_RESIDENT_HOME, so a read-only root filesystem works.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE* ./
COPY src ./src
# A wheel of the project and its dependencies, built without the test or dev extras.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OLLAMA_RESIDENT_HOME=/var/lib/ollama-resident
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels ollama-resident \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 resident \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin resident \
    && mkdir -p /var/lib/ollama-resident \
    && chown 10001:10001 /var/lib/ollama-resident
VOLUME ["/var/lib/ollama-resident"]
USER 10001:10001
ENTRYPOINT ["ollama-resident"]
CMD ["--help"]
