# srflow: one image for the API and the workers (choose by command).
#
#   docker build -t srflow .                                  # CPU torch (the default)
#   docker build --build-arg TORCH=cuda -t srflow:cuda .      # CUDA torch, for GPU workers
#   docker run -p 8000:8000 -e SRFLOW_ADMIN_KEY=... srflow    # embedded: API + worker
#   docker run srflow srflow worker --queues cpu              # a worker (needs Redis)
#
# podman: `podman build --format docker ...` (the OCI format drops HEALTHCHECK).
#
# torch is pinned (==2.13.0) in both variants, chosen by the TORCH build argument:
#   cpu   the CPU wheel: a torch-2.13.0+cpu-*.whl in ./wheels/ of the build context if one
#         is there (scripts/compose-check puts the host's there), else PyTorch's CPU index
#         (TORCH_CPU_INDEX, https://download.pytorch.org/whl/cpu);
#   cuda  PyPI's default Linux wheel, built with CUDA (an image of ~5.7 GB); run the worker
#         with a GPU reservation (docker-compose.yml), one worker container/process per GPU:
#         -c 1, CUDA_VISIBLE_DEVICES, max-tasks-per-child 1 (srflow worker sets the last two).
# The API never imports torch. Everything lives in a virtual environment (/opt/srflow), so
# the image builds the same on python:3.11-slim and on a Debian base whose pip is
# "externally managed".
FROM python:3.11-slim

ARG TORCH=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SRFLOW_DATA_DIR=/data VIRTUAL_ENV=/opt/srflow PATH=/opt/srflow/bin:$PATH

WORKDIR /srv/srflow
RUN python3 -m venv /opt/srflow

# the optional local torch wheel (wheel[s]: no error when ./wheels/ is absent)
COPY pyproject.toml wheel[s] /tmp/context/
RUN set -eu; \
    case "$TORCH" in \
      cuda) pip install "torch==2.13.0" ;; \
      cpu) if ls /tmp/context/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then \
             pip install /tmp/context/torch-2.13.0+cpu-*.whl; \
           else \
             pip install "torch==2.13.0" --index-url "$TORCH_CPU_INDEX"; \
           fi ;; \
      *) echo "TORCH=$TORCH: use cpu or cuda" >&2; exit 2 ;; \
    esac; \
    rm -rf /tmp/context

# the service's dependencies in a layer of their own (a code change does not reinstall them)
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['service']))" > /tmp/req.txt \
    && pip install -r /tmp/req.txt && rm /tmp/req.txt

COPY core ./core
COPY app ./app
COPY worker ./worker
COPY cli ./cli
RUN pip install --no-deps ".[service]" \
    && useradd --create-home --uid 10001 srflow \
    && mkdir -p /data && chown srflow /data
USER srflow
VOLUME ["/data"]
EXPOSE 8000

# exec form, plain words: Docker, podman and podman-compose all run it unchanged
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["srflow", "probe", "api"]

CMD ["srflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
