# The image the Helm chart runs: `leadflow` with every service, migrations and contracts.
#   docker build -t leadflow:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin leadflow
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001:10001
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEADFLOW_DATA_DIR=/tmp/leadflow
EXPOSE 8081 8082 8083 8084
ENTRYPOINT ["leadflow"]
CMD ["--help"]
