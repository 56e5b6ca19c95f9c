# srflow: one image for the API and the workers (choose by command).
#
#   docker build -t srflow .
#   docker run -p 8000:8000 -e SRFLOW_ADMIN_KEY=... srflow                 # embedded: API + worker
#   docker run srflow srflow worker --queues cpu                           # a worker (needs Redis)
#
# CPU torch by default. GPU variant: build with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (same torch==2.13.0 pin, CUDA wheels) and run the worker with a GPU reservation
# (docker-compose.yml) — one worker container/process per GPU: -c 1, CUDA_VISIBLE_DEVICES,
# max-tasks-per-child 1 (srflow worker sets the last two). The API never imports torch.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 SRFLOW_DATA_DIR=/data

RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX}"

WORKDIR /srv/srflow
COPY pyproject.toml README.md ./
COPY core ./core
COPY app ./app
COPY worker ./worker
COPY cli ./cli
RUN pip install ".[service]" && useradd --create-home --uid 10001 srflow \
    && mkdir -p /data && chown srflow /data
USER srflow
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4)"

CMD ["srflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
