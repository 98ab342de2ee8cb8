#!/usr/bin/env bash
# Writes the selector's TLS files for compose.yaml into deploy/compose/tls/ (or the directory given): a private CA
# (ca.pem, which the edges trust) and the selector's certificate for the compose service names and 127.0.0.1 (for
# `poolgate accounts` and `poolgate reload` run inside a selector's container). Needs openssl.
# Existing files are kept; remove the directory to make new ones.
set -euo pipefail
dir="${1:-$(dirname "$0")/tls}"
names="${POOLGATE_SELECTOR_NAMES:-selector selector-pg-1 selector-pg-2 localhost}"
mkdir -p "$dir"
cd "$dir"
if [ -e selector.pem ]; then
    echo "make-tls: $PWD/selector.pem exists; kept"
    exit 0
fi
san=$(printf 'DNS:%s,' $names)IP:127.0.0.1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=poolgate compose CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=selector" \
    -keyout selector.key -out selector.csr 2>/dev/null
openssl x509 -req -in selector.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -out selector.pem \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
rm -f selector.csr ca.srl
chmod 600 ca.key
# The containers run as uid 10001: it must read the key. On a shared host, `chown 10001 selector.key` and chmod 600.
chmod 644 selector.key
echo "make-tls: wrote $PWD/{ca.pem,selector.pem,selector.key} for: $names"
