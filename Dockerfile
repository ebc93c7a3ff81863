# The runner as an image: one `opthub-runner` process per container.
#
#   docker build -t opthub-runner .                                   # from python:3.12-slim
#   docker build --build-arg BASE=my-registry/python:3.12 -t opthub-runner .
#
# BASE is any Debian-like image with python3 (3.10 to 3.13) and its venv module.
# For a build without an index, put the wheels of the package's dependencies in
# wheelhouse/ and pass --build-arg PIP_INSTALL_OPTIONS="--no-index --find-links /tmp/src/wheelhouse".
#
# Running it (docs/fleet.md has the whole recipe):
#
#   docker run -d --name opthub-evaluator \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /etc/opthub-runner/config.yml:/etc/opthub-runner/config.yml:ro \
#     --env-file /etc/opthub-runner/credentials.env \
#     --stop-timeout 660 \
#     opthub-runner evaluator --config /etc/opthub-runner/config.yml --grace-period 600
#
# The runner runs as the unprivileged user opthub (uid 10001). It needs the Docker
# socket, which is root:docker 0660 on most hosts: --group-add gives the container
# the socket's group id, so that no root is needed. Where the socket is root:root
# 0660 (a rootful daemon without a docker group), the group id is 0: --group-add 0
# still works and is still not root.
#
# The config comes from a mounted file (pass --config; keep cache_dir absolute or
# unset, since the mounted folder is read-only) and the credentials from the environment (OPTHUB_USERNAME,
# OPTHUB_PASSWORD, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or from an IAM role
# (instance profile, IRSA, ECS task role), never from the image.
#
# SIGTERM drains: the runner is PID 1 and installs its own handlers (a first
# SIGTERM finishes the running jobs, a second cancels them); it starts no child
# process, so no init (tini, --init) is needed to reap zombies. Give `docker stop`
# (--stop-timeout / -t) and Kubernetes (terminationGracePeriodSeconds) more time
# than --grace-period.
ARG BASE=python:3.12-slim-bookworm
FROM ${BASE}

ARG PIP_INSTALL_OPTIONS=""
COPY . /tmp/src
RUN python3 -m venv /opt/opthub-runner \
    && /opt/opthub-runner/bin/pip install --no-cache-dir --disable-pip-version-check \
        ${PIP_INSTALL_OPTIONS} /tmp/src \
    && rm -rf /tmp/src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/opthub-runner \
        --create-home --shell /usr/sbin/nologin opthub \
    && mkdir -p /etc/opthub-runner \
    && chmod 0700 /var/lib/opthub-runner

ENV PATH=/opt/opthub-runner/bin:$PATH \
    HOME=/var/lib/opthub-runner \
    XDG_CONFIG_HOME=/var/lib/opthub-runner/config \
    XDG_CACHE_HOME=/var/lib/opthub-runner/cache \
    XDG_RUNTIME_DIR=/var/lib/opthub-runner/run \
    PYTHONUNBUFFERED=1

USER opthub
WORKDIR /var/lib/opthub-runner
STOPSIGNAL SIGTERM
ENTRYPOINT ["opthub-runner"]
CMD ["--help"]
