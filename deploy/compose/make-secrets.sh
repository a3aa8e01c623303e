#!/usr/bin/env bash
# Makes what deploy/compose needs and must not commit: .env (cluster secret, Consul token, admin password),
# secrets/token-signing.pem (the gateways' token key) and tls/ (a local CA and a certificate for localhost).
# Existing files are kept. Then: docker compose up -d; trust tls/ca.crt in your clients (docs/security.md "TLS").
set -euo pipefail
cd "$(dirname "$0")"
umask 077
if [ ! -f .env ]; then
  {
    echo "COMPOSE_PROJECT_NAME=wharf"
    echo "WHARF_CLUSTER_SECRET=$(openssl rand -base64 48 | tr -d '\n')"
    echo "WHARF_CONSUL_TOKEN=$(cat /proc/sys/kernel/random/uuid)"
    echo "WHARF_ADMIN_PASSWORD=$(openssl rand -base64 18 | tr -d '\n/+=')"
  } > .env
  echo "wrote .env (the admin password is in it: user admin)"
fi
mkdir -p secrets tls
if [ ! -f secrets/token-signing.pem ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out secrets/token-signing.pem
  echo "wrote secrets/token-signing.pem"
fi
if [ ! -f tls/server.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=Wharf compose CA" \
    -keyout tls/ca.key -out tls/ca.crt -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" -keyout tls/server.key -out tls/server.csr 2>/dev/null
  openssl x509 -req -in tls/server.csr -CA tls/ca.crt -CAkey tls/ca.key -CAcreateserial -days 825 -out tls/server.crt \
    -extfile <(printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:false") 2>/dev/null
  rm -f tls/server.csr tls/ca.srl
  chmod 644 tls/server.crt tls/ca.crt
  echo "wrote tls/ (trust tls/ca.crt: e.g. cp tls/ca.crt /etc/docker/certs.d/localhost:5000/ca.crt)"
fi
