# One image for the API, the workers and the scheduler: `cloudarb serve | worker | scheduler`.
# Installs exactly the versions of uv.lock (the ones the test suite passed with).
FROM python:3.11-slim
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
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --create-home cloudarb
USER cloudarb
EXPOSE 8000
CMD ["cloudarb", "serve", "--host", "0.0.0.0", "--port", "8000"]
