# syntax=docker/dockerfile:1
# One image for every Dagster process of the deployment: the code server, the webserver, the
# daemon and each run container DockerRunLauncher starts (docker-compose.yml picks the command),
# and the same on AWS ECS, where EcsRunLauncher starts each run (deploy/aws/template.yaml).

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the project and its pinned dependencies, installed into a relocatable venv ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the wheel needs: tests, .git and local state stay out of the image.
COPY pyproject.toml README.md ./
COPY football_assets ./football_assets
# The commit the image is built from, so the UI links each asset to its code there
# (.git stays out of the build context; without both, the UI shows files inside the image):
#   docker build --build-arg GIT_URL=https://github.com/<owner>/<repo>
#                --build-arg GIT_COMMIT=$(git rev-parse HEAD) .
ARG GIT_URL=""
ARG GIT_COMMIT=""
COPY deploy/write_build_info.py /tmp/write_build_info.py
RUN python /tmp/write_build_info.py "$GIT_URL" "$GIT_COMMIT"
# A regular (non-editable) install, so the final stage needs no source tree; the pins in
# pyproject.toml keep dagster, its webserver and dagster-postgres/-docker/-aws in lockstep.
RUN pip install --upgrade pip setuptools wheel \
    && pip install . \
    && dagster --version

# --- runtime: no compilers or pip caches, a non-root user ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    FOOTBALL_OUTPUT_DIR=/opt/dagster/app/output

# A fixed uid/gid, so files on the named volumes keep one owner across image rebuilds.
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster \
        --shell /usr/sbin/nologin dagster

COPY --from=builder /opt/venv /opt/venv

# Volume mount points exist in the image, owned by `dagster`: Docker seeds an empty named
# volume from them, so the non-root processes can write to freshly created volumes. The request
# budget needs no volume: with DATABASE_URL set (compose, ECS) it lives in PostgreSQL.
# /opt/dagster/ecs_home is DAGSTER_HOME on ECS (deploy/aws/template.yaml sets it).
RUN mkdir -p \
        "$DAGSTER_HOME/storage" \
        /opt/dagster/ecs_home/storage \
        /opt/dagster/app/output \
    && chown -R dagster:dagster /opt/dagster

COPY --chown=dagster:dagster deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY --chown=dagster:dagster workspace.docker.yaml /opt/dagster/app/workspace.docker.yaml
# The ECS variant (deploy/aws/): its instance config, its workspace, and the first start's
# warehouse database creation.
COPY --chown=dagster:dagster deploy/aws/dagster.yaml /opt/dagster/ecs_home/dagster.yaml
COPY --chown=dagster:dagster deploy/aws/workspace.yaml /opt/dagster/app/workspace.ecs.yaml
COPY --chown=dagster:dagster deploy/aws/create_warehouse_database.py \
    /opt/dagster/app/create_warehouse_database.py

WORKDIR /opt/dagster/app
USER dagster

# 3000: dagster-webserver; 4000: the user code gRPC server.
EXPOSE 3000 4000

# Default role: the code server. The webserver and daemon override the command in compose;
# run containers are given `dagster api execute_run ...` by the launcher.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "football_assets.definitions"]
