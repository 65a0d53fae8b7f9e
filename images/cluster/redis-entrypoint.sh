#!/bin/sh
# Stand-in entrypoint (images/cluster/redis.Containerfile): the official image compiles protected
# mode off; Debian's build has it on, which would refuse every other pod. An explicit
# --protected-mode in the args still wins, as it comes later.
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
