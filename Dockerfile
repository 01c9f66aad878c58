# One image for every sleepwake service; the command picks the agent.
FROM python:3.11-slim
# Set PIP_EXTRA_INDEX_URL to a CPU-only PyTorch wheel index to keep the image small.
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agents agents
COPY events events
COPY runtime runtime
COPY projections projections
COPY cli cli
COPY modelcore modelcore
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["sleepwake", "--help"]
