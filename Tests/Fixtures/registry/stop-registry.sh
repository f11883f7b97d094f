#!/bin/sh
# Removes the CA start-registry.sh installed for the registry on PORT from certs.d.
# Usage: stop-registry.sh DIR PORT
port=$2
rm -rf "/etc/containers/certs.d/127.0.0.1:$port"
exit 0
