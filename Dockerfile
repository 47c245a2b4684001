# Trailhouse in a container: `docker build -t trailhouse .` then see docs/deployment.md.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRAILHOUSE_DB=sqlite:////var/lib/trailhouse/trailhouse.db \
    TRAILHOUSE_DATA_DIR=/var/lib/trailhouse

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /var/lib/trailhouse --create-home trailhouse \
    && chmod 0700 /var/lib/trailhouse

USER trailhouse
WORKDIR /var/lib/trailhouse
VOLUME ["/var/lib/trailhouse"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["trailhouse"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
