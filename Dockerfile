# rooms on Debian's Python, as the non-root user `rooms`, its data in the volume /var/lib/rooms.
#   docker build -t rooms .
#   docker run -d -p 127.0.0.1:8000:8000 -v rooms-data:/var/lib/rooms rooms
# Secrets come from the environment or from files at run time (docs/operating.md), never from the image.
FROM debian:bookworm-slim

# Debian's Python and its certificate authorities (installed before anything is fetched over HTTPS), and
# jemalloc, which rooms runs on when it finds it (server.allocator: auto): memory a crowd used goes back after it.
# Versions are not pinned: the release's own packages with its security fixes are the ones wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 rooms \
    && useradd --uid 10001 --gid rooms --no-create-home --home-dir /var/lib/rooms --shell /usr/sbin/nologin rooms \
    && install -d -o rooms -g rooms -m 0750 /var/lib/rooms \
    && python3 -m venv /opt/rooms

# The pinned runtime requirements in a layer of their own: a change to the code leaves it cached.
COPY requirements.txt /tmp/rooms/requirements.txt
RUN /opt/rooms/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/rooms/requirements.txt

COPY pyproject.toml README.md server.py /tmp/rooms/
COPY rooms /tmp/rooms/rooms
COPY backends /tmp/rooms/backends
COPY templates /tmp/rooms/templates
COPY static /tmp/rooms/static
RUN /opt/rooms/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /tmp/rooms \
    && rm -rf /tmp/rooms

ENV PATH=/opt/rooms/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROOMS_HOST=0.0.0.0 \
    ROOMS_PORT=8000 \
    ROOMS_BACKEND_URL=sqlite:////var/lib/rooms/rooms.db

USER 10001:10001
WORKDIR /var/lib/rooms
VOLUME ["/var/lib/rooms"]
EXPOSE 8000

# From inside the container, so from loopback: /healthz answers it whatever server.allowed_hosts holds.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROOMS_PORT', '8000'), timeout=2)"]

# rooms itself is PID 1: SIGTERM closes every socket with 1001, stores what is in flight, and exits 0
# within server.shutdown_grace (5 s), well before `docker stop` would kill it (10 s).
STOPSIGNAL SIGTERM
CMD ["rooms"]
