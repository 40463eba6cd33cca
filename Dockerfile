# SIA service image: `sia worker` (Kafka scale-out) by default; any sia command works.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sia ./sia
COPY config ./config
RUN pip install . && useradd --system --home /app sia && chown -R sia /app
USER sia
ENTRYPOINT ["sia"]
CMD ["worker"]
