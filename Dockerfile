# One image for the API, the workers and the scheduler: `cloudarb serve | worker | scheduler`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cloudarb ./cloudarb
COPY optimizer ./optimizer
COPY forecasting ./forecasting
COPY ingestion ./ingestion
COPY examples ./examples
RUN pip install .
RUN useradd --create-home cloudarb
USER cloudarb
EXPOSE 8000
CMD ["cloudarb", "serve", "--host", "0.0.0.0", "--port", "8000"]
