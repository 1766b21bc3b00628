# NATS server image (context: the repository's nats/ folder).
FROM uwl-base:bookworm
COPY . /etc/nats/
EXPOSE 4222 6222 8222
ENTRYPOINT ["/usr/bin/tini", "--", "nats-server"]
CMD ["-c", "/etc/nats/standalone.conf"]
