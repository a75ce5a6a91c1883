# svcdns in an image of its own, holding only the static binary that
# `make build` produces (CGO_ENABLED=0). Build it with `make image`;
# nothing is pulled.
#
# It runs as nobody (65534); the README shows how to give it the Docker
# socket's group and port 53, on the host's network or on a bridge.
FROM scratch
COPY bin/svcdns /svcdns
USER 65534:65534
EXPOSE 53/udp 53/tcp 8053/tcp
ENTRYPOINT ["/svcdns"]
