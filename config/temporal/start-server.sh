#!/bin/sh
# Starts the Temporal server on this directory's configuration (cluster.yaml, dynamicconfig.yaml).
# docker-compose's `temporal` service runs it in the temporalio/server image; the native test
# cluster (src/local-stack/cluster.ts) runs it with TEMPORAL_SERVER = the server it built and
# BIND_ON_IP = 127.0.0.1. The other variables are listed in cluster.yaml.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)

# In a container, listen on the container's own address (what the image's entrypoint does), so the
# other containers reach the server by its service name.
if [ -z "${BIND_ON_IP:-}" ]; then
  BIND_ON_IP=$(getent hosts "$(hostname)" | awk '{ print $1; exit }')
fi
: "${BIND_ON_IP:?could not find this host's address: set BIND_ON_IP}"
: "${DYNAMIC_CONFIG_FILE_PATH:=$dir/dynamicconfig.yaml}"
export BIND_ON_IP DYNAMIC_CONFIG_FILE_PATH

# --allow-no-auth: no authorizer, like Temporal's own images; put the cluster behind TLS and an
# authorizer before exposing it beyond a private network.
exec "${TEMPORAL_SERVER:-temporal-server}" --root "$dir" --config . --env cluster --allow-no-auth start
