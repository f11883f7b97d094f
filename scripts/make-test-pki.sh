#!/bin/sh
# Makes a throwaway PKI for tests and the demo (never commit its output):
#   make-test-pki.sh DIR
# DIR/ca.crt              CA for both the server and the client certificates
# DIR/server.{crt,key}    CN=localhost, SAN DNS:localhost, IP:127.0.0.1
# DIR/{reader,operator,admin,stranger}.{crt,key}   client certificates (CN = the name)
# DIR/rogue-ca.crt, DIR/rogue.{crt,key}            a client certificate from another CA
# DIR/twocn.{crt,key}     subject CN=reader, CN=admin (ambiguous: refused)
# DIR/sanop.{crt,key}     no CN, SAN DNS:operator (the identity with identity-source: dns-san)
set -eu
d=$1
mkdir -p "$d"
cd "$d"
umask 077
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # NAME CA EXT [SUBJECT]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "${4:-/CN=$1}" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca
ca rogue-ca
leaf server ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
for n in reader operator admin stranger; do leaf "$n" ca "extendedKeyUsage=clientAuth"; done
leaf rogue rogue-ca "extendedKeyUsage=clientAuth"
leaf twocn ca "extendedKeyUsage=clientAuth" "/CN=reader/CN=admin"
leaf sanop ca "extendedKeyUsage=clientAuth
subjectAltName=DNS:operator" "/O=apt-layer tests"
chmod 644 ./*.crt
