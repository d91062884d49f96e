#!/usr/bin/env bash
# A throwaway CA and a broker certificate signed by it, for trying the TLS listener and for tests.
# NOT for production: there, use certificates from your PKI or ACME (Let's Encrypt) for the broker's
# real name, and give devices that CA.
set -euo pipefail
usage="usage: $(basename "$0") OUT_DIR [HOSTNAME_OR_IP ...]

Writes OUT_DIR/ca.crt, ca.key, server.crt, server.key. The broker certificate is valid for
localhost, 127.0.0.1, ::1 and every HOSTNAME_OR_IP given, for 825 days; the CA for 10 years.
An existing CA in OUT_DIR is reused, so devices that trust it keep working when the broker
certificate is re-issued."
die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
case $1 in -h|--help) echo "$usage"; exit 0 ;; esac
command -v openssl >/dev/null || die "openssl not found"
out=$1; shift
mkdir -p "$out" || die "cannot create $out"
cd "$out"
umask 077

san="DNS:localhost,IP:127.0.0.1,IP:::1"
cn=localhost
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+=",IP:$name"
  elif [[ $name =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san+=",DNS:$name"; [ "$cn" != localhost ] || cn=$name
  else
    die "'$name' is neither a host name nor an IP address"
  fi
done

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -subj "/CN=binsight dev CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null || die "could not create the CA"
  echo "created CA $out/ca.crt"
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
  -keyout server.key -out server.csr 2>/dev/null || die "could not create the broker key"
ext=$(mktemp)
trap 'rm -f "$ext" server.csr' EXIT
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$san" > "$ext"
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 825 \
  -extfile "$ext" -out server.crt 2>/dev/null || die "could not sign the broker certificate"
chmod 644 ca.crt server.crt
# The broker drops root for the "mosquitto" user before it reads the key on some setups.
chmod 640 server.key
if getent group mosquitto >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then chgrp mosquitto server.key; fi
echo "broker certificate $out/server.crt for $san"
