# Functions shared by kind_test_all.sh (a throwaway cluster for the end-to-end test) and
# kind_cluster.sh (the cluster that runs staging and production). Sourced, not run; the
# caller sets CLUSTER_NAME, WORK_DIR, MODEL_STORE, SELDON_CHART_REPO and exports KUBECONFIG.
# shellcheck shell=bash
SELDON_CORE_VERSION="${SELDON_CORE_VERSION:-1.18.2}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"
DOCKER_WAIT_S="${DOCKER_WAIT_S:-60}"

log() { printf '[kind] %s\n' "$*" >&2; }

start_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    log "starting the docker daemon"
    if command -v service >/dev/null 2>&1; then
        service docker start >/dev/null 2>&1 || true
    fi
    # bounded wait: the socket appears a little after the service starts
    if ! timeout "${DOCKER_WAIT_S}" sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'
    then
        log "docker did not answer within ${DOCKER_WAIT_S}s"
        return 1
    fi
}

create_cluster() {
    cat >"${WORK_DIR}/kind-config.yaml" <<CONFIG
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraMounts:
      - hostPath: ${MODEL_STORE}
        containerPath: /models
        readOnly: true
CONFIG
    if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
        log "cluster ${CLUSTER_NAME} exists"
    else
        log "creating cluster ${CLUSTER_NAME}"
        kind create cluster --name "${CLUSTER_NAME}" --config "${WORK_DIR}/kind-config.yaml" \
            --wait 180s
    fi
    # `kind get kubeconfig-path` was removed from kind; write the kubeconfig ourselves
    kind get kubeconfig --name "${CLUSTER_NAME}" >"${KUBECONFIG}"
}

install_seldon() {
    # our reusable servers join the operator's predictor_servers, as its own ones are
    local settings=(--set usageMetrics.enabled=false) impl image tag key
    while read -r impl image tag; do
        [[ -n "${impl}" ]] || continue
        key="predictor_servers.${impl}.protocols.seldon"
        settings+=(--set "${key}.image=${image}" --set "${key}.defaultImageVersion=${tag}")
    done <"${WORK_DIR}/servers.txt"
    log "installing seldon-core-operator ${SELDON_CORE_VERSION}"
    # upgrade --install: a second call (new images, new servers) updates the release
    helm upgrade --install seldon-core seldon-core-operator --repo "${SELDON_CHART_REPO}" \
        --version "${SELDON_CORE_VERSION}" --namespace seldon-system --create-namespace \
        "${settings[@]}" --wait --timeout "${ROLLOUT_TIMEOUT}"
}

load_images() {
    local ref folder
    while read -r ref folder; do
        [[ -n "${ref}" ]] || continue
        log "building ${ref}"
        docker build --quiet --tag "${ref}" "${folder}" >/dev/null
        kind load docker-image "${ref}" --name "${CLUSTER_NAME}"
    done <"${WORK_DIR}/images.txt"
}
