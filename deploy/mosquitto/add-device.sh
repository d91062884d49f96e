#!/usr/bin/env bash
# Give one camera (bin) its own MQTT account: user name = bin id, a random password.
# The broker ACL (deploy/mosquitto/acl, pattern %u) then lets it write only under <root>/<bin_id>/
# and read only its own cmd and model topics.
set -euo pipefail
USAGE="usage: $(basename "$0") [-p PASSWD_FILE] [-o OUT_DIR] [--rotate] BIN_ID

Adds BIN_ID to the Mosquitto password file (default /etc/mosquitto/binsight/passwd, or
\$BINSIGHT_MQTT_PASSWD) and writes its password to OUT_DIR/BIN_ID/mqtt_password (default
./credentials, or \$BINSIGHT_CREDENTIALS_OUT) for provisioning the device, where the agent reads it
as the secret mqtt_password (systemd LoadCredential, see docs/deploy.md). --rotate replaces the
password of an existing account."
# shellcheck source=deploy/mosquitto/accounts.sh
source "$(dirname "$(readlink -f "$0")")/accounts.sh"
parse_args "$USAGE" "$@"
check_name
case $NAME in
  binsight-server*) die "'$NAME' is reserved for server accounts (use add-server.sh)" ;;
esac
add_account
reload_hint
