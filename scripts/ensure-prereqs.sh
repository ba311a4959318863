#!/usr/bin/env bash
# What the tests need from outside Python, installed from Debian's packages when missing:
#   a JRE and Maven    - the local Kafka broker, from Apache Kafka's jars on Maven Central
#                        (not needed when KAFKA_BOOTSTRAP_SERVERS names a cluster)
#   PostgreSQL server  - a throwaway cluster for the database tests
#                        (not needed when LEADFLOW_TEST_POSTGRES_URL names a server)
#   Chromium           - the reporting dashboard's test opens the page in it (headless)
set -euo pipefail

need=()
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
fi
if [ -z "${LEADFLOW_TEST_POSTGRES_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-liberation)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${need[*]}"
sudo=""
if [ "$(id -u)" != "0" ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing ${need[*]} and not root: install them, or set KAFKA_BOOTSTRAP_SERVERS and" \
         "LEADFLOW_TEST_POSTGRES_URL" >&2
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# policy-rc.d: do not start the distribution's own PostgreSQL cluster; the tests run their own.
if [ -d /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -q --no-install-recommends "${need[@]}"
