#!/bin/sh
# After the server is healthy: Tandem's namespace and the two search attributes its
# lifecycles set (TandemPhase, TandemQuadrant). The worker registers them at start as
# well; doing it here first means no lifecycle can run before they exist. Idempotent.
set -eu
NAMESPACE="${DEFAULT_NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-720h}"  # how long closed lifecycles stay visible
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"

retry() {  # a new namespace takes a few seconds to reach every server cache
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        [ "$tries" -lt 30 ] || { echo "gave up: $*"; exit 1; }
        sleep 2
    done
}

retry temporal operator cluster health
temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
retry temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null

has_attribute() {
    temporal operator search-attribute list --namespace "$NAMESPACE" | grep -qw "$1"
}
for name in TandemPhase TandemQuadrant; do
    has_attribute "$name" || retry temporal operator search-attribute create \
        --namespace "$NAMESPACE" --name "$name" --type Keyword
    retry has_attribute "$name"
done
echo "Namespace $NAMESPACE is ready"
