#!/usr/bin/env bash
# Installs the proxies the adapter tests and the routing bench drive
# (HAProxy, Caddy, nginx from Debian), only those whose binary is missing,
# so CI can run it on every build at no cost once they are there.
set -euo pipefail

declare -A PACKAGE=([haproxy]=haproxy [caddy]=caddy [nginx]=nginx-light)
missing=()
for binary in haproxy caddy nginx; do
  command -v "$binary" >/dev/null 2>&1 || missing+=("${PACKAGE[$binary]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # The tests start their own proxies on 127.0.0.1: keep Debian's maintainer
  # scripts from starting daemons (nginx on port 80…) through invoke-rc.d.
  # policy-rc.d answering 101 is Debian's way to say so; only ours is removed.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
    trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

haproxy -v | sed -n 1p # sed reads it all: head would end haproxy by SIGPIPE, which pipefail counts
caddy version
nginx -v 2>&1
