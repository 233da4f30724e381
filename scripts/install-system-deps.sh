#!/usr/bin/env bash
# Installs the Debian packages the tests and the benchmark call, when missing:
# curl and ffprobe (real clients in the tests), chromium (the browser tests,
# driven by Playwright, which cannot download a browser here), nginx and wrk
# (the benchmark's reference server and load generator), and PostgreSQL's
# server (the catalog's tests run one; Debian keeps its programs off PATH, in
# /usr/lib/postgresql/<major>/bin).
set -euo pipefail

declare -A package_of=([curl]=curl [ffprobe]=ffmpeg [chromium]=chromium [nginx]=nginx-light [wrk]=wrk)
missing=()
for command in "${!package_of[@]}"; do
  command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("${package_of[$command]}")
done
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
