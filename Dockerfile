# One image for the API (which also serves the dashboard), the workers and the scheduler:
# `cloudarb serve | worker | scheduler | db upgrade | db check`.
# Stage 1 builds the dashboard with Node; stage 2 installs exactly the Python versions of uv.lock
# (the ones the test suite passed with) and copies the built dashboard in. Base images are pinned.

FROM node:20.18.1-bookworm-slim AS dashboard
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM python:3.11.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1
WORKDIR /app
COPY requirements/bootstrap.txt requirements/bootstrap.txt
RUN pip install --require-hashes -r requirements/bootstrap.txt
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-editable --extra all
COPY cloudarb ./cloudarb
COPY optimizer ./optimizer
COPY forecasting ./forecasting
COPY ingestion ./ingestion
COPY examples ./examples
RUN uv sync --frozen --no-editable --extra all
COPY --from=dashboard /frontend/dist /app/frontend/dist
# A fixed numeric user (Kubernetes' runAsNonRoot checks the number). Everything the processes write
# goes under /tmp (metrics files, data directory), so the root filesystem can be mounted read-only.
RUN useradd --uid 10001 --user-group --create-home cloudarb
ENV PATH=/opt/venv/bin:$PATH \
    CLOUDARB_DASHBOARD_DIR=/app/frontend/dist \
    CLOUDARB_DATA_DIR=/tmp/cloudarb \
    PROMETHEUS_MULTIPROC_DIR=/tmp/cloudarb-metrics
USER 10001:10001
EXPOSE 8000 9100
CMD ["cloudarb", "serve", "--host", "0.0.0.0", "--port", "8000"]
