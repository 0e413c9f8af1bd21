#!/usr/bin/env bash
# End-to-end test of the model servers in a throwaway KIND cluster with the Seldon Core
# operator. Called by `mlops-workshop seldon_kind integration_test` on the kind backend,
# which prepares WORK_DIR:
#   WORK_DIR/manifests/*.yaml     namespace, model-store volume, SeldonDeployments
#   WORK_DIR/images.txt           "<image ref> <build folder>" per line
#   WORK_DIR/servers.txt          "<IMPLEMENTATION> <image> <tag>": our reusable servers
#   WORK_DIR/port-forwards.txt    "<namespace> <service> <local port> <remote port>" per line
#   WORK_DIR/targets.json         what e2e_seldon_client.py checks
# The cluster is always deleted, whatever fails.
set -o errexit -o nounset -o pipefail

: "${CLUSTER_NAME:?name of the kind cluster}"
: "${WORK_DIR:?folder prepared by the kind backend}"
: "${MODEL_STORE:?folder mounted into the node as the model volume}"
: "${SELDON_PYTHON:?python of the Seldon environment}"
: "${SELDON_CHART_REPO:?helm repository of the seldon-core-operator chart}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export KUBECONFIG="${WORK_DIR}/kubeconfig"
FORWARD_PIDS=()
# shellcheck source=SCRIPTDIR/kind_lib.sh
source "${HERE}/kind_lib.sh"

cleanup() {
    local code=$?
    for pid in "${FORWARD_PIDS[@]}"; do
        kill "${pid}" 2>/dev/null || true
    done
    log "deleting cluster ${CLUSTER_NAME}"
    kind delete cluster --name "${CLUSTER_NAME}" || log "could not delete ${CLUSTER_NAME}"
    exit "${code}"
}

deploy_and_wait() {
    log "applying manifests"
    kubectl apply -f "${WORK_DIR}/manifests/"
    local namespace
    for namespace in $(kubectl get sdep --all-namespaces -o jsonpath='{.items[*].metadata.namespace}' | tr ' ' '\n' | sort -u); do
        log "waiting for the SeldonDeployments in ${namespace}"
        kubectl wait sdep --all --namespace "${namespace}" \
            --for=jsonpath='{.status.state}'=Available --timeout "${ROLLOUT_TIMEOUT}"
    done
}

run_tests() {
    local namespace service local_port remote_port
    while read -r namespace service local_port remote_port; do
        [[ -n "${namespace}" ]] || continue
        kubectl port-forward --namespace "${namespace}" "svc/${service}" \
            "${local_port}:${remote_port}" >/dev/null 2>&1 &
        FORWARD_PIDS+=("$!")
        timeout 30 sh -c "until nc -z 127.0.0.1 ${local_port}; do sleep 1; done"
    done <"${WORK_DIR}/port-forwards.txt"
    log "end-to-end test through SeldonClient"
    "${SELDON_PYTHON}" "${HERE}/e2e_seldon_client.py" "${WORK_DIR}/targets.json"
}

main() {
    start_docker
    trap cleanup EXIT
    create_cluster
    install_seldon
    load_images
    deploy_and_wait
    run_tests
}

main "$@"
