#!/usr/bin/env bash
# The cluster that runs staging and production on the kind backend: one kind cluster with the
# Seldon Core operator, each environment a namespace that `mlops-workshop seldon_kind`
# reconciles from its GitOps folder (`kubectl apply --prune`). Called by the kind backend,
# which prepares WORK_DIR (images.txt, servers.txt: see kind_test_all.sh).
#
#   kind_cluster.sh up     create the cluster if it is missing, install or upgrade the
#                          operator, build and load the current images (idempotent)
#   kind_cluster.sh down   delete the cluster
set -o errexit -o nounset -o pipefail

: "${CLUSTER_NAME:?name of the kind cluster}"
: "${WORK_DIR:?folder prepared by the kind backend}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export KUBECONFIG="${WORK_DIR}/kubeconfig"
# shellcheck source=SCRIPTDIR/kind_lib.sh
source "${HERE}/kind_lib.sh"

case "${1:-}" in
    up)
        : "${MODEL_STORE:?folder mounted into the node as the model volume}"
        : "${SELDON_CHART_REPO:?helm repository of the seldon-core-operator chart}"
        start_docker
        create_cluster
        install_seldon
        load_images
        ;;
    down)
        log "deleting cluster ${CLUSTER_NAME}"
        kind delete cluster --name "${CLUSTER_NAME}"
        ;;
    *)
        echo "usage: $0 up|down" >&2
        exit 2
        ;;
esac
