#!/bin/sh
# Throwaway certificates for the image's demo (never for production): a CA, a server certificate
# for localhost and 127.0.0.1, and the client certificates alice and bob. Usage: demo-certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir" && cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -subj /CN=mtls-pool-demo-ca -days 3650 -out ca.crt
for name in server alice bob; do
  key "$name"
  cn=$name; ext=""
  if [ "$name" = server ]; then
    cn=localhost
    printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' > server.ext
    ext="-extfile server.ext"
  fi
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  # shellcheck disable=SC2086 # $ext is empty or two words
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 $ext -out "$name.crt" 2>/dev/null
done
rm -f ./*.csr ./*.ext ca.srl ca.key
# nginx workers (www-data) read the client keys: throwaway keys, world-readable
chmod 644 ./*.key
