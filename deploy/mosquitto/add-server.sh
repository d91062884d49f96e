#!/usr/bin/env bash
# Give one server process its own MQTT account and ACL block (read every bin, write cmd and model,
# alerts and Home Assistant topics).
# Each process needs its own account: the broker uses the user name as the client id, and two
# connections with one client id would keep disconnecting each other.
set -euo pipefail
USAGE="usage: $(basename "$0") [-p PASSWD_FILE] [-a ACL_FILE] [-o OUT_DIR] [--rotate] [NAME]

NAME defaults to binsight-server and must start with binsight-server (binsight-server-2, ...).
Adds it to the password file (default /etc/mosquitto/binsight/passwd, or \$BINSIGHT_MQTT_PASSWD)
and, when missing, its block to the ACL (default /etc/mosquitto/binsight/acl, or
\$BINSIGHT_MQTT_ACL); writes the password to OUT_DIR/NAME/mqtt_password (default ./credentials)."
# shellcheck source=deploy/mosquitto/accounts.sh
source "$(dirname "$(readlink -f "$0")")/accounts.sh"
DEFAULT_NAME=binsight-server
parse_args "$USAGE" "$@"
check_name
case $NAME in
  binsight-server*) ;;
  *) die "server account names start with binsight-server (got '$NAME')" ;;
esac
[ -f "$ACL_FILE" ] || die "ACL file $ACL_FILE not found (install deploy/mosquitto/acl there first)"
# The topic root is taken from the ACL's first server block, so a customised root is kept.
root=$(awk '$1 == "topic" && $2 == "write" && $3 ~ /\/\+\/cmd$/ { sub(/\/\+\/cmd$/, "", $3); print $3; exit }' "$ACL_FILE")
[ -n "$root" ] || die "$ACL_FILE has no server block ('topic write <root>/+/cmd') to copy the topic root from"
if ! grep -qx "user $NAME" "$ACL_FILE"; then
  [ -w "$ACL_FILE" ] || die "cannot write $ACL_FILE"
  # A user block runs until the next "user" line; patterns are global wherever they stand.
  printf '\nuser %s\ntopic read %s/+/+\ntopic write %s/+/cmd\ntopic write %s/+/model\n' \
    "$NAME" "$root" "$root" "$root" >> "$ACL_FILE"
  printf 'topic write %s/+/alert\ntopic write %s/_ha/#\ntopic write homeassistant/#\n' \
    "$root" "$root" >> "$ACL_FILE"
  echo "ACL block for $NAME appended to $ACL_FILE"
fi
add_account
reload_hint
