# docker/local/postgres.Dockerfile: a stand-in for the official `postgres`
# image, for a local trial of docker/compose.yaml on a machine that cannot
# pull it (docker/local/README.md). Debian's PostgreSQL 15 with the part of
# the official image's interface the compose file uses: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB create the role and the database at the
# first start, the data in /var/lib/postgresql/data, `postgres -c ...`
# arguments, pg_isready on PATH. Not for production: use the official image.
FROM debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY docker/local/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
