#!/usr/bin/env bash
# Validates the Kubernetes manifests of deploy/k8s/base against the Kubernetes API schemas
# (kubernetes-validate from PyPI carries them, so this works offline), and checks that the
# kustomization lists exactly the manifests of the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=deploy/k8s/base

if ! command -v kubernetes-validate >/dev/null; then
  python3 -m pip install --quiet kubernetes-validate >/dev/null 2>&1 \
    || python3 -m pip install --quiet --user --break-system-packages kubernetes-validate >/dev/null
  export PATH="$HOME/.local/bin:$PATH"
fi

listed=$(awk '/^resources:/ {on=1; next} /^[^ ]/ {on=0} on && /^  - / {print $2}' "$BASE/kustomization.yaml" | sort)
present=$(cd "$BASE" && ls *.yaml | grep -v '^kustomization.yaml$' | sort)
if [ "$listed" != "$present" ]; then
  echo "validate-deploy: kustomization.yaml lists [$(echo $listed)] but the folder has [$(echo $present)]" >&2
  exit 1
fi
(cd "$BASE" && kubernetes-validate --strict $listed)
