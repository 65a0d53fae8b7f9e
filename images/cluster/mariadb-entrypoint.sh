#!/bin/bash
# Stand-in entrypoint (images/cluster/mariadb.Containerfile): on an empty data directory, creates
# the system tables, the root password, the database and user from MARIADB_* and a healthcheck
# user for healthcheck.sh, with a server that listens on its socket only; then runs the server.
set -euo pipefail
datadir=/var/lib/mysql

if [[ ! -d $datadir/mysql ]]; then
  : "${MARIADB_ROOT_PASSWORD:?MARIADB_ROOT_PASSWORD is required}"
  echo "stand-in entrypoint: initialising $datadir"
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  mariadbd --datadir="$datadir" --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  for _ in $(seq 60); do mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1 && break; sleep 1; done
  # SQL string literals: a quote in a value is doubled, never interpolated raw.
  quote() { printf "'%s'" "${1//\'/\'\'}"; }
  healthcheck_password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(quote "$MARIADB_ROOT_PASSWORD");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(quote "$MARIADB_ROOT_PASSWORD");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY $(quote "$healthcheck_password");"
    echo "GRANT USAGE ON *.* TO 'healthcheck'@'localhost';"
    if [[ -n ${MARIADB_DATABASE:-} ]]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/}\`;"
    fi
    if [[ -n ${MARIADB_USER:-} ]]; then
      echo "CREATE USER $(quote "$MARIADB_USER")@'%' IDENTIFIED BY $(quote "${MARIADB_PASSWORD:-}");"
      [[ -n ${MARIADB_DATABASE:-} ]] && echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/}\`.* TO $(quote "$MARIADB_USER")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket=/run/mysqld/init.sock -uroot
  printf '[mariadb-client]\nuser=healthcheck\npassword=%s\nprotocol=socket\n' "$healthcheck_password" \
    >"$datadir/.my-healthcheck.cnf"
  chmod 600 "$datadir/.my-healthcheck.cnf"
  kill "$pid" && wait "$pid" || true
  echo "stand-in entrypoint: initialised"
fi
exec "$@"
