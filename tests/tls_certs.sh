#!/bin/sh
# Makes throwaway TLS certificates for the C, C++ and Go TLS tests in folder $1 (valid two
# days): ca.pem/.key and other_ca.pem/.key (CAs), server.pem/.key (signed by ca; for
# localhost and 127.0.0.1), client.pem/.key (signed by ca; CN=c-worker, O=librp tests,
# DNS:c-worker.example). Needs the openssl command; exits non-zero without it.
set -e
cd "$1"
command -v openssl >/dev/null 2>&1 || { echo "openssl not found" >&2; exit 2; }
q() { "$@" >/dev/null 2>&1; }
ca() {
  q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$1.key" -out "$1.pem" -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$3" "$4" >"$1.ext"
  q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out "$1.pem" -extfile "$1.ext"
}
ca ca
ca other_ca
leaf server '/CN=push server' serverAuth DNS:localhost,IP:127.0.0.1
leaf client '/CN=c-worker/O=librp tests' clientAuth DNS:c-worker.example
