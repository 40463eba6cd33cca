# SIA service image: `sia serve` (the HTTP API, live engine and delivery, data in
# /data) by default; `sia worker` for the Kafka scale-out; any sia command works.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sia ./sia
COPY config ./config
RUN pip install . && useradd --system --home /app sia && mkdir /data && chown -R sia /app /data
USER sia
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
ENTRYPOINT ["sia"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
