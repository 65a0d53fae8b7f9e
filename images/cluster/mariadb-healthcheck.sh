#!/bin/bash
# Stand-in for the image's healthcheck.sh (images/cluster/mariadb.Containerfile), the two checks
# k8s/mariadb's probes use: --connect (the server answers its socket) and --innodb_initialized.
set -euo pipefail
client=(mariadb --defaults-extra-file=/var/lib/mysql/.my-healthcheck.cnf --skip-column-names --batch)
for check in "$@"; do
  case $check in
    --connect) "${client[@]}" -e 'SELECT 1' >/dev/null ;;
    --innodb_initialized)
      [[ $("${client[@]}" -e "SELECT 1 FROM information_schema.ENGINES WHERE engine='InnoDB' AND support IN ('YES','DEFAULT')") == 1 ]] ;;
    *) echo "healthcheck.sh stand-in: unsupported check $check" >&2; exit 2 ;;
  esac
done
