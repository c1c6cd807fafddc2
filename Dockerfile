# synmon: the daemon in a Debian slim image with Chromium and chromedriver.
# Build: docker build -t synmon .    Run: docker run -p 3005:3005 synmon
# The image runs `synmon run` with /etc/synmon/synmon.yaml (the example config, its journeys,
# alerts and dashboards); mount your own files over /etc/synmon in production (deploy/k8s does).

# ---- build ------------------------------------------------------------------------------
FROM rust:1.94-slim-bookworm AS build
WORKDIR /src
# ring and the bundled SQLite compile C: the rust image carries gcc; nothing else is needed
# (TLS is rustls, no OpenSSL).
COPY . .
RUN cargo build --profile dist --locked -p synmon --bin synmon \
    && strip target/dist/synmon

# ---- run --------------------------------------------------------------------------------
FROM debian:bookworm-slim
# chromium + chromium-driver: the journeys' browser (chromium-headless-shell: the same engine
# without browser windows, which local headless runs use when installed); tini: PID 1 that reaps Chromium's
# children and forwards SIGTERM; curl: the HEALTHCHECK; ca-certificates: HTTPS targets.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium chromium-driver chromium-headless-shell tini curl ca-certificates fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/synmon --create-home synmon
COPY --from=build /src/target/dist/synmon /usr/local/bin/synmon
COPY synmon.example.yaml /etc/synmon/synmon.yaml
COPY journeys /etc/synmon/journeys
COPY alerts /etc/synmon/alerts
COPY dashboards /etc/synmon/dashboards
COPY flags /etc/synmon/flags
# Paths in the config are relative to its folder: artifacts go to /etc/synmon/artifacts, a
# symlink to the writable state folder.
RUN ln -s /var/lib/synmon/artifacts /etc/synmon/artifacts \
    && install -d -o synmon -g synmon /var/lib/synmon/artifacts
# Listen beyond loopback inside the container; the store on the state volume.
ENV SYNMON_LISTEN=0.0.0.0:3005 \
    SYNMON_STORE_URL=sqlite:///var/lib/synmon/synmon.db
VOLUME ["/var/lib/synmon"]
WORKDIR /var/lib/synmon
USER 10001:10001
EXPOSE 3005
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3005/healthz"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/synmon", "run"]
CMD ["--config", "/etc/synmon/synmon.yaml"]
