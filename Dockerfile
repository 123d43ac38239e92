# One image for the three Dagster processes (run each as its own container):
#   code server: dagster code-server start -h 0.0.0.0 -p 4000 -m pump_orchestration.definitions --location-name pump_orchestration
#   webserver:   dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml   (workspace pointing at the code server)
#   daemon:      dagster-daemon run -w workspace.yaml                     (exactly one)
# Environment: PUMP_DEPLOYMENT=production (set here) needs DB_DSN (warehouse), DAGSTER_PG_* (Dagster's storage), MODEL_STORAGE_PATH (a shared volume),
# N8N_WEBHOOK_URL. See README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PUMP_DEPLOYMENT=production \
    DAGSTER_HOME=/opt/dagster/home \
    PUMP_DATA_DIR=/var/lib/pump_orchestration \
    MODEL_STORAGE_PATH=/var/lib/pump_orchestration/models

WORKDIR /opt/pump_orchestration
COPY setup.py README.md ./
COPY pump_orchestration ./pump_orchestration
RUN pip install --no-cache-dir . && mkdir -p "$DAGSTER_HOME" "$MODEL_STORAGE_PATH"
COPY docker/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY workspace.yaml ./
COPY sql ./sql

EXPOSE 3000 4000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info')" || exit 1
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
