# Shared by add-device.sh and add-server.sh (sourced, not run): create or rotate one MQTT account.
# shellcheck shell=bash

PASSWD_FILE=${BINSIGHT_MQTT_PASSWD:-/etc/mosquitto/binsight/passwd}
ACL_FILE=${BINSIGHT_MQTT_ACL:-/etc/mosquitto/binsight/acl}
OUT_DIR=${BINSIGHT_CREDENTIALS_OUT:-./credentials}
ROTATE=0

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }

parse_args() {  # usage text in $1, then the script's arguments; sets NAME
  local usage=$1; shift
  while [ $# -gt 0 ]; do
    case $1 in
      -p|--passwd) [ $# -ge 2 ] || die "$1 needs a file"; PASSWD_FILE=$2; shift 2 ;;
      -a|--acl) [ $# -ge 2 ] || die "$1 needs a file"; ACL_FILE=$2; shift 2 ;;
      -o|--out) [ $# -ge 2 ] || die "$1 needs a folder"; OUT_DIR=$2; shift 2 ;;
      -r|--rotate) ROTATE=1; shift ;;
      -h|--help) echo "$usage"; exit 0 ;;
      --) shift; [ $# -le 1 ] || die "one name at a time"; [ $# -eq 0 ] || { NAME=$1; shift; } ;;
      -*) die "unknown option $1 (try --help)" ;;
      *) [ -z "${NAME:-}" ] || die "one name at a time (got '$NAME' and '$1')"; NAME=$1; shift ;;
    esac
  done
  NAME=${NAME:-${DEFAULT_NAME:-}}
  [ -n "$NAME" ] || { echo "$usage" >&2; exit 2; }
}

check_name() {  # the bin id alphabet of binsight.protocol.BIN_ID_PATTERN (also safe in ACL %u and paths)
  [[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] \
    || die "invalid name '$NAME': use 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
}

add_account() {  # NAME -> password in PASSWD_FILE, plain copy in OUT_DIR/NAME/mqtt_password
  command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd not found (apt-get install mosquitto)"
  if [ ! -e "$PASSWD_FILE" ]; then
    mkdir -p "$(dirname "$PASSWD_FILE")"
    (umask 027 && : > "$PASSWD_FILE") || die "cannot create $PASSWD_FILE"
    # Mosquitto started as root drops to the "mosquitto" user before it reads this file.
    if [ "$(id -u)" -eq 0 ] && getent group mosquitto >/dev/null 2>&1; then chgrp mosquitto "$PASSWD_FILE"; fi
  fi
  [ -w "$PASSWD_FILE" ] || die "cannot write $PASSWD_FILE"
  if grep -q "^${NAME}:" "$PASSWD_FILE" && [ "$ROTATE" -eq 0 ]; then
    die "$NAME already has an account in $PASSWD_FILE (use --rotate to give it a new password)"
  fi
  local password
  # 32 characters from [A-Za-z0-9]: ~190 bits, and no character a config file or URL would mangle.
  # (pipefail off inside: tr ends on SIGPIPE when head has enough, which is the normal case)
  password=$(set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32)
  [ ${#password} -eq 32 ] || die "could not generate a password"
  # The password goes through stdin, never the command line (which `ps` shows to every user).
  printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "$PASSWD_FILE" "$NAME" >/dev/null \
    || die "mosquitto_passwd failed for $PASSWD_FILE"
  local dir="$OUT_DIR/$NAME"
  (umask 077 && mkdir -p "$dir" && printf '%s' "$password" > "$dir/mqtt_password") \
    || die "cannot write $dir/mqtt_password"
  echo "account $NAME: password hash in $PASSWD_FILE, password in $dir/mqtt_password (mode 600)"
}

reload_hint() {
  echo "reload the broker to apply: systemctl reload mosquitto (or send it SIGHUP)"
}
