#!/usr/bin/env bash
# Installs what cloudmha's build, demo and tests need on Debian 12, as root.
# Idempotent: packages already present are left as they are.
set -euo pipefail

need_pkgs=(
  mariadb-server mariadb-client   # real servers for the test bed and the demo
  openssh-server openssh-client   # sshd per test host; check-ssh
  iproute2 nftables iputils-arping procps psmisc
  make git ca-certificates
  gcc libc6-dev                   # the race detector (go test -race) needs cgo
  bind9 bind9-utils               # a real DNS server for the rfc2136 mover's tests
  prometheus prometheus-alertmanager  # alert rules (promtool), the dashboard's queries, alert delivery
  chromium fonts-dejavu-core      # the status page, tested headless
)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The package's own mariadb service is not used (the test bed runs its own
  # mariadbd per namespace); policy-rc.d keeps it from starting.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    echo "Go 1.26 or newer is needed (go.mod); install it to /usr/local/go" >&2
    exit 1
  fi
fi
cd "$(dirname "$0")/.."
go mod download
echo "dependencies ready: $(go version), $(mariadbd --version | head -1)"
