# The one image of the project's services (context: target/image, staged by
# deploy/images/build.sh): the Rust binaries built once on the host, plus the
# NATS and nginx configs, and the monitoring's (Prometheus, its rules,
# Alertmanager's start script). Each container picks its program by command.
FROM uwl-base:bookworm
COPY bin/ /usr/local/bin/
COPY nats/ /etc/nats/
COPY nginx/nginx.conf.template /etc/nginx/nginx.conf.template
COPY nginx/nginx-start nginx/alertmanager-start /usr/local/bin/
COPY monitoring/ /etc/uwl/monitoring/
RUN mkdir -p /data /config
ENTRYPOINT ["/usr/bin/tini", "--"]
