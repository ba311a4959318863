#!/usr/bin/env bash
# helm and kubeconform for the Helm chart's checks, built from the Go module proxy into
# .data/tools/bin when they are not on PATH. Without a Go toolchain the chart tests skip,
# saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM_VERSION=v3.19.0
KUBECONFORM_VERSION=v0.7.0
bin="$PWD/.data/tools/bin"
mkdir -p "$bin"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$bin/$1" ]; }
if have helm && have kubeconform; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "no helm/kubeconform and no Go toolchain to build them: the Helm chart checks will be skipped"
  exit 0
fi
export GOBIN="$bin" GOFLAGS=-buildvcs=false
have kubeconform || { echo "building kubeconform $KUBECONFORM_VERSION"; go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"; }
have helm || { echo "building helm $HELM_VERSION (a few minutes, once)"; go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }
