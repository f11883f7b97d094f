#!/bin/sh
# Prepares a real docker-registry (distribution 2.8) with TLS on 127.0.0.1:PORT for the image
# tests: a CA and a server certificate for 127.0.0.1 made here, the CA installed where skopeo looks
# for it (/etc/containers/certs.d/127.0.0.1:PORT/ca.crt), DIR/config.yml. The caller then runs
# `docker-registry serve DIR/config.yml` (its log, every request with its URI, on stderr) and
# stop-registry.sh DIR PORT at the end.
# Usage: start-registry.sh DIR PORT
set -eu
dir=$1 port=$2
mkdir -p "$dir/storage"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=image-test CA" \
  -keyout ca.key -out ca.crt >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt >/dev/null 2>&1
mkdir -p "/etc/containers/certs.d/127.0.0.1:$port"
cp ca.crt "/etc/containers/certs.d/127.0.0.1:$port/ca.crt"
cat > config.yml <<CONFIG
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $dir/server.crt
    key: $dir/server.key
CONFIG
