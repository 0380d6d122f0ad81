#!/usr/bin/env bash
# Logical backups of the whole `nexus` database (every service's schema), compressed, encrypted
# and authenticated, kept NEXUS_BACKUP_RETENTION_DAYS days; and their restore.
#
#   nexus-backup.sh backup                  dump now; prune what is past retention
#   nexus-backup.sh list                    backups at the destination, oldest first
#   nexus-backup.sh verify NAME             decrypt and read the archive's table of contents
#   nexus-backup.sh restore NAME TARGET_URL restore into TARGET_URL (an empty database), in one
#                                           transaction: a damaged or forged backup changes nothing
#
# Environment (each may also be given as <NAME>_FILE, read from a file, as Kubernetes mounts
# Secrets):
#   NEXUS_BACKUP_DATABASE_URL   owner/superuser URL of the database to dump
#   NEXUS_BACKUP_KEY            passphrase (>= 32 characters) for OpenPGP symmetric encryption
#                               (AES-256; its integrity check makes a modified file fail to decrypt)
#   NEXUS_BACKUP_DEST           a directory, or s3://bucket/prefix (S3-compatible, through rclone
#                               configured by RCLONE_CONFIG_S3_* variables: endpoint, keys, region)
#   NEXUS_BACKUP_RETENTION_DAYS default 30
# A backup is two objects named by its UTC time: nexus-<stamp>.dump.gpg (pg_dump custom format,
# compressed) and nexus-<stamp>.roles.sql.gpg (the cluster's roles without passwords, so a restore
# into a new cluster can recreate the service roles the grants and RLS policies name).
set -euo pipefail

die() { echo "nexus-backup: $*" >&2; exit 2; }

# Reads NAME from NAME or NAME_FILE.
secret() {
  local name=$1 file_var="${1}_FILE"
  if [[ -n ${!file_var:-} ]]; then
    [[ -r ${!file_var} ]] || die "$file_var: cannot read ${!file_var}"
    tr -d '\n' <"${!file_var}"
  else
    printf '%s' "${!name:-}"
  fi
}

dest=${NEXUS_BACKUP_DEST:-}
[[ -n $dest ]] || die "NEXUS_BACKUP_DEST is not set (a directory or s3://bucket/prefix)"
retention=${NEXUS_BACKUP_RETENTION_DAYS:-30}
[[ $retention =~ ^[0-9]+$ ]] || die "NEXUS_BACKUP_RETENTION_DAYS must be a whole number of days"

work=$(mktemp -d "${TMPDIR:-/tmp}/nexus-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
# gpg keeps no keyring here; its home is private to this run.
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"

key_file() {
  local key
  key=$(secret NEXUS_BACKUP_KEY)
  ((${#key} >= 32)) || die "NEXUS_BACKUP_KEY must be at least 32 characters"
  printf '%s' "$key" >"$work/key"
  chmod 600 "$work/key"
  echo "$work/key"
}

encrypt() { # stdin -> stdout
  gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$1" \
    --symmetric --cipher-algo AES256 --s2k-digest-algo SHA512 --s2k-count 65011712 --compress-algo none
}

decrypt() { # file -> stdout; fails on a wrong key or any modified byte
  gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$1" --decrypt "$2"
}

is_s3() { [[ $dest == s3://* ]]; }
s3_path() { echo "s3:${dest#s3://}"; }

put() { # local file, object name
  if is_s3; then rclone copyto --s3-no-check-bucket "$1" "$(s3_path)/$2"; else mkdir -p "$dest" && mv "$1" "$dest/$2"; fi
}

get() { # object name, local file
  if is_s3; then rclone copyto "$(s3_path)/$1" "$2"; else cp "$dest/$1" "$2"; fi
}

names() { # every backup's stamp, oldest first
  if is_s3; then rclone lsf "$(s3_path)" --include 'nexus-*.dump.gpg'; else ls -1 "$dest" 2>/dev/null | grep -E '^nexus-.*\.dump\.gpg$' || true; fi |
    sed -E 's/^nexus-(.*)\.dump\.gpg$/\1/' | sort
}

remove() { # object name
  if is_s3; then rclone deletefile "$(s3_path)/$1"; else rm -f "$dest/$1"; fi
}

stamp_of() { # NAME: a stamp or an object name
  local n=${1##*/}
  n=${n#nexus-}
  echo "${n%%.*}"
}

cmd=${1:-}
case $cmd in
  backup)
    url=$(secret NEXUS_BACKUP_DATABASE_URL)
    [[ -n $url ]] || die "NEXUS_BACKUP_DATABASE_URL is not set"
    key=$(key_file)
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    pg_dump --dbname="$url" --format=custom --compress=6 | encrypt "$key" >"$work/dump.gpg"
    pg_dumpall --dbname="$url" --roles-only --no-role-passwords | encrypt "$key" >"$work/roles.gpg"
    put "$work/roles.gpg" "nexus-$stamp.roles.sql.gpg"
    put "$work/dump.gpg" "nexus-$stamp.dump.gpg"
    echo "backup written: nexus-$stamp.dump.gpg"
    # Retention by the stamp in the name (object stores keep no reliable mtime).
    cutoff=$(date -u -d "-$retention days" +%Y%m%dT%H%M%SZ)
    while read -r old; do
      [[ -n $old && $old < $cutoff ]] || continue
      remove "nexus-$old.dump.gpg"
      remove "nexus-$old.roles.sql.gpg"
      echo "pruned: nexus-$old (older than $retention days)"
    done < <(names)
    ;;
  list)
    names
    ;;
  verify)
    [[ -n ${2:-} ]] || die "usage: verify NAME"
    key=$(key_file)
    stamp=$(stamp_of "$2")
    get "nexus-$stamp.dump.gpg" "$work/dump.gpg"
    decrypt "$key" "$work/dump.gpg" >"$work/dump" || die "nexus-$stamp: does not decrypt (wrong key, or the file was modified)"
    pg_restore --list "$work/dump" >/dev/null || die "nexus-$stamp: not a readable archive"
    echo "nexus-$stamp: decrypts and reads ($(pg_restore --list "$work/dump" | grep -c 'TABLE DATA') tables with data)"
    ;;
  restore)
    [[ -n ${2:-} && -n ${3:-} ]] || die "usage: restore NAME TARGET_URL"
    key=$(key_file)
    stamp=$(stamp_of "$2")
    target=$3
    get "nexus-$stamp.dump.gpg" "$work/dump.gpg"
    get "nexus-$stamp.roles.sql.gpg" "$work/roles.gpg"
    # Decrypt both before touching the target: a modified file stops here.
    decrypt "$key" "$work/dump.gpg" >"$work/dump" || die "nexus-$stamp: does not decrypt (wrong key, or the file was modified); nothing restored"
    decrypt "$key" "$work/roles.gpg" >"$work/roles.sql" || die "nexus-$stamp roles: does not decrypt; nothing restored"
    # Roles are cluster-wide: those that exist already stay as they are.
    grep -E '^CREATE ROLE ' "$work/roles.sql" | while read -r _ _ role; do
      role=${role%;}
      psql --dbname="$target" -v ON_ERROR_STOP=1 -qAtc \
        "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role//\"/}') THEN CREATE ROLE $role; END IF; END \$\$;" >/dev/null
    done
    grep -E '^ALTER ROLE ' "$work/roles.sql" | psql --dbname="$target" -v ON_ERROR_STOP=0 -qAt >/dev/null 2>&1 || true
    pg_restore --dbname="$target" --single-transaction --exit-on-error "$work/dump" ||
      die "nexus-$stamp: restore failed; the transaction was rolled back and nothing changed"
    echo "restored nexus-$stamp into the target database"
    ;;
  *)
    die "usage: nexus-backup.sh backup | list | verify NAME | restore NAME TARGET_URL"
    ;;
esac
