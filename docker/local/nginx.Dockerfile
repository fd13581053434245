# docker/local/nginx.Dockerfile: a stand-in for the official `nginx` image,
# for a local trial of docker/compose.yaml on a machine that cannot pull it
# (docker/local/README.md): Debian's nginx, run in the foreground with the
# configuration mounted at /etc/nginx/nginx.conf (docker/nginx.conf, which
# works with both). Not for production: use the official image.
FROM debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
