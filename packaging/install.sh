#!/bin/sh
# Installs berth on a node from an unpacked release (bin/, examples/, SHA256SUMS beside this script).
# berth is one executable that runs as the program it is named; it is installed once and linked
# under the other name:
#   berth-ipam                 -> /opt/cni/bin                       (--cni-bin-dir)
#   berth-credential-provider  -> /usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec
#                                                                     (--credential-provider-bin-dir)
# The first program installed is the file; the other is a hard link to it when both directories
# are on one file system, else a symbolic link to its path on the node.
# Every file is checked against SHA256SUMS, copied to a temporary directory beside its
# destination, checked again, made executable and renamed over the old one: a container runtime or
# the kubelet exec'ing the plugin mid-upgrade gets the old binary or the new one, never half of
# one. A file that is already installed with the right content and mode is left alone.
# POSIX sh and the utilities busybox has (sha256sum, cmp, mktemp, stat, ln, mv, readlink), so it
# runs in a busybox image as well as on a node.
set -eu

readonly IPAM=berth-ipam
readonly PROVIDER=berth-credential-provider
# Beside the kubelet's default volume plugin dir (/usr/libexec/kubernetes/kubelet-plugins/volume/exec).
readonly DEFAULT_PROVIDER_BIN_DIR=/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec
readonly KUBELET_CONFIG=/etc/kubernetes/image-credential-provider-config.yaml
readonly KUBELET_DROPIN=/etc/systemd/system/kubelet.service.d/20-berth-credential-provider.conf

usage() {
  cat <<EOF
Usage: install.sh [options]

Installs ${IPAM} and ${PROVIDER} (one executable, linked under both names)
from this release onto the node.

Options:
  --cni-bin-dir DIR                  where the container runtime looks for CNI plugins
                                     (default /opt/cni/bin)
  --credential-provider-bin-dir DIR  the kubelet's --image-credential-provider-bin-dir
                                     (default /usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec)
  --only ipam|credential-provider    install only this program (repeatable; default: both)
  --kubelet-config                   also install the kubelet's credential provider config
                                     (${KUBELET_CONFIG}) and its systemd drop-in
                                     (${KUBELET_DROPIN})
  --root DIR                         install under DIR instead of / (an image, a chroot, a host
                                     filesystem mounted into a container, a scratch directory)
  --source DIR                       the unpacked release to install from (default: this script's directory)
  --skip-exec-check                  do not run the new binary with --version before installing it
                                     (for installing another architecture into --root)
  --dry-run                          print what would change, change nothing
  --uninstall                        remove what install.sh installs (configs only if unmodified)
  -h, --help                         this text
EOF
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

src_dir=$(cd "$(dirname "$0")" && pwd)
root=/
cni_bin_dir=/opt/cni/bin
provider_bin_dir=$DEFAULT_PROVIDER_BIN_DIR
dry_run=0
uninstall=0
exec_check=1
kubelet_config=0
want_ipam=0
want_provider=0
only=0

need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}

want() {
  only=1
  case $1 in
    ipam | "$IPAM") want_ipam=1 ;;
    credential-provider | "$PROVIDER") want_provider=1 ;;
    *) die "--only: unknown program '$1' (ipam or credential-provider)" ;;
  esac
}

while [ $# -gt 0 ]; do
  case $1 in
    --cni-bin-dir) need_value "$@"; cni_bin_dir=$2; shift 2 ;;
    --cni-bin-dir=*) cni_bin_dir=${1#*=}; shift ;;
    --credential-provider-bin-dir) need_value "$@"; provider_bin_dir=$2; shift 2 ;;
    --credential-provider-bin-dir=*) provider_bin_dir=${1#*=}; shift ;;
    --only) need_value "$@"; want "$2"; shift 2 ;;
    --only=*) want "${1#*=}"; shift ;;
    --root) need_value "$@"; root=$2; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --source) need_value "$@"; src_dir=$2; shift 2 ;;
    --source=*) src_dir=${1#*=}; shift ;;
    --kubelet-config) kubelet_config=1; shift ;;
    --skip-exec-check) exec_check=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
if [ $only -eq 0 ]; then
  want_ipam=1
  want_provider=1
fi

# Node paths, as the runtime and the kubelet see them (under --root, which may be relative).
for d in "$cni_bin_dir" "$provider_bin_dir"; do
  case $d in
    /*) ;;
    *) die "not an absolute path: $d" ;;
  esac
done
cni_bin_dir=${cni_bin_dir%/}
provider_bin_dir=${provider_bin_dir%/}
[ -d "$root" ] || die "--root $root is not a directory"
root=$(cd "$root" && pwd)
[ "$root" = / ] && root=""
src_dir=$(cd "$src_dir" 2>/dev/null && pwd) || die "--source: no such directory"
if [ $kubelet_config -eq 1 ] && [ "$provider_bin_dir" != "$DEFAULT_PROVIDER_BIN_DIR" ]; then
  # The drop-in names the default directory; a kubelet pointed elsewhere would find no plugin.
  die "--kubelet-config installs a drop-in for $DEFAULT_PROVIDER_BIN_DIR; with another --credential-provider-bin-dir, edit examples/kubelet/20-berth-credential-provider.conf and install it yourself"
fi

ipam_dest=$cni_bin_dir/$IPAM
provider_dest=$provider_bin_dir/$PROVIDER
# The program installed as the file (node path); the other one links to it.
if [ $want_ipam -eq 1 ]; then primary=$ipam_dest; else primary=$provider_dest; fi

sha256() {
  sum=$(sha256sum <"$1") || return 1
  printf '%s\n' "${sum%% *}"
}

# The digest SHA256SUMS records for a path of the release ("<hex>  path" or "<hex> *path").
expected_sha256() {
  [ -f "$src_dir/SHA256SUMS" ] || die "no SHA256SUMS in $src_dir: not an unpacked berth release"
  while IFS= read -r line || [ -n "$line" ]; do
    hex=${line%% *}
    name=${line#* }
    name=${name# }
    name=${name#\*}
    if [ "$name" = "$1" ]; then
      case $hex in
        *[!0-9a-f]*) die "SHA256SUMS: malformed line for $1" ;;
      esac
      [ ${#hex} -eq 64 ] || die "SHA256SUMS: malformed line for $1"
      printf '%s\n' "$hex"
      return 0
    fi
  done <"$src_dir/SHA256SUMS"
  die "SHA256SUMS has no entry for $1"
}

file_mode() {
  stat -c '%a' -- "$1"
}

say() {
  if [ $dry_run -eq 1 ]; then
    printf 'would %s\n' "$*"
  else
    printf '%s\n' "$*"
  fi
}

tmp_dir=""
changed=0
cleanup() {
  if [ -n "$tmp_dir" ]; then
    rm -rf -- "$tmp_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private directory beside dest: the new file gets dest's own name there (the executable picks
# its program by that name, also for the exec check) and is renamed into place from it.
stage_dir() {
  dir=$(dirname -- "$1")
  mkdir -p -- "$dir" 2>/dev/null || die "cannot create $dir (run as root, or use --root)"
  tmp_dir=$(mktemp -d -- "$dir/.berth-install.XXXXXX" 2>/dev/null) || die "cannot write in $dir (run as root, or use --root)"
}

# Renames the staged file over dest and removes the staging directory.
commit_staged() {
  sync -- "$tmp_dir/${1##*/}" 2>/dev/null || true
  mv -f -T -- "$tmp_dir/${1##*/}" "$1"
  rmdir -- "$tmp_dir"
  tmp_dir=""
  changed=$((changed + 1))
  sync -- "$(dirname -- "$1")" 2>/dev/null || true
}

# Starts putting something at $1: sets verb to install or replace and tmp to the staging path beside
# it; in a dry run only says what would be done ($2 says what is put there).
begin_install() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then die "$1 is a directory"; fi
  verb=install
  if [ -e "$1" ] || [ -L "$1" ]; then verb=replace; fi
  if [ $dry_run -eq 1 ]; then
    [ -d "$(dirname -- "$1")" ] || say "create directory $(dirname -- "$1")"
    say "$verb $1 ($2)"
    return 0
  fi
  stage_dir "$1"
  tmp=$tmp_dir/${1##*/}
}

# Copies one verified file into place; prints what it did.
install_file() {
  rel=$1 dest=$root$2 mode=$3 expect=$4
  # The source already matched SHA256SUMS, so an identical file is the verified one.
  if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s -- "$src_dir/$rel" "$dest" && [ "$(file_mode "$dest")" = "${mode#0}" ]; then
    printf 'unchanged %s\n' "$dest"
    return 0
  fi
  begin_install "$dest" "mode $mode, sha256 $expect"
  if [ $dry_run -eq 1 ]; then return 0; fi
  cat -- "$src_dir/$rel" >"$tmp"
  # Checked again after the copy: what gets renamed into place is exactly what SHA256SUMS names.
  got=$(sha256 "$tmp")
  [ "$got" = "$expect" ] || die "copy of $rel has sha256 $got, expected $expect (disk full?); nothing replaced"
  chmod "$mode" -- "$tmp"
  if [ "$mode" = 0755 ] && [ $exec_check -eq 1 ]; then
    # Catches a release for another architecture or a host without libstdc++/libatomic before
    # the runtime does.
    if ! out=$(env -i "$tmp" --version </dev/null 2>&1); then
      die "$rel does not run on this machine (${out:-no output}); nothing replaced (see --skip-exec-check)"
    fi
  fi
  commit_staged "$dest"
  printf '%sed %s\n' "${verb%e}" "$dest"
}

# dest (a node path) names the installed primary: a hard link to it, or a symbolic link to its node path.
is_link_to_primary() {
  if [ -L "$root$1" ]; then
    [ "$(readlink -- "$root$1")" = "$primary" ]
  else
    [ -f "$root$1" ] && [ -f "$root$primary" ] &&
      [ "$(stat -c '%d:%i' -- "$root$1")" = "$(stat -c '%d:%i' -- "$root$primary")" ]
  fi
}

# Links dest (a node path) to the primary: a hard link if the file system allows, else a symbolic link.
install_link() {
  dest=$root$1
  if is_link_to_primary "$1"; then
    printf 'unchanged %s\n' "$dest"
    return 0
  fi
  begin_install "$dest" "a link to $primary"
  if [ $dry_run -eq 1 ]; then return 0; fi
  # link(2) fails across file systems and across mounts (a container's two hostPath volumes).
  if ln -- "$root$primary" "$tmp" 2>/dev/null; then
    kind="hard link to $primary"
  else
    ln -s -- "$primary" "$tmp" || die "cannot link $dest to $primary"
    kind="symbolic link to $primary"
  fi
  commit_staged "$dest"
  printf '%sed %s (%s)\n' "${verb%e}" "$dest" "$kind"
}

uninstall_one() {
  dest=$root$1 example=$2
  if [ ! -e "$dest" ] && [ ! -L "$dest" ]; then
    printf 'absent %s\n' "$dest"
    return 0
  fi
  if [ -d "$dest" ] && [ ! -L "$dest" ]; then die "$dest is a directory; not removing it"; fi
  # A config the administrator edited is theirs now.
  if [ -n "$example" ] && ! cmp -s -- "$src_dir/$example" "$dest"; then
    printf 'kept %s (modified)\n' "$dest"
    return 0
  fi
  # A symbolic link under our name that points elsewhere is not one we made.
  if [ -L "$dest" ]; then
    target=$(readlink -- "$dest")
    if [ "$target" != "$ipam_dest" ] && [ "$target" != "$provider_dest" ]; then
      printf 'kept %s (a link to %s, not installed by berth)\n' "$dest" "$target"
      return 0
    fi
  fi
  if [ $dry_run -eq 1 ]; then
    say "remove $dest"
    return 0
  fi
  rm -f -- "$dest"
  changed=$((changed + 1))
  printf 'removed %s\n' "$dest"
}

if [ $uninstall -eq 1 ]; then
  # A symbolic link left behind would point at nothing: refuse before removing anything.
  if [ $want_ipam -eq 1 ] && [ $want_provider -eq 0 ] && [ -L "$root$provider_dest" ] &&
    [ "$(readlink -- "$root$provider_dest")" = "$ipam_dest" ]; then
    die "$root$provider_dest is a symbolic link to $ipam_dest: uninstall both, or install --only credential-provider first"
  fi
  if [ $want_provider -eq 1 ] && [ $want_ipam -eq 0 ] && [ -L "$root$ipam_dest" ] &&
    [ "$(readlink -- "$root$ipam_dest")" = "$provider_dest" ]; then
    die "$root$ipam_dest is a symbolic link to $provider_dest: uninstall both, or install --only ipam first"
  fi
  if [ $want_provider -eq 1 ]; then uninstall_one "$provider_dest" ""; fi
  if [ $want_ipam -eq 1 ]; then uninstall_one "$ipam_dest" ""; fi
  if [ $kubelet_config -eq 1 ]; then
    uninstall_one "$KUBELET_CONFIG" examples/kubelet/image-credential-provider-config.yaml
    uninstall_one "$KUBELET_DROPIN" examples/kubelet/20-berth-credential-provider.conf
  fi
  exit 0
fi

# Verify every source file before touching the node: all of the release or none of it.
verify() {
  [ -f "$src_dir/$1" ] || die "$src_dir/$1 not found (use --only to install one program)"
  expect=$(expected_sha256 "$1")
  got=$(sha256 "$src_dir/$1")
  [ "$got" = "$expect" ] || die "checksum mismatch for $1: SHA256SUMS says $expect, file has $got; refusing to install"
  printf '%s\n' "$expect"
}
ipam_sum="" provider_sum="" config_sum="" dropin_sum=""
if [ $want_ipam -eq 1 ]; then ipam_sum=$(verify "bin/$IPAM"); fi
if [ $want_provider -eq 1 ]; then provider_sum=$(verify "bin/$PROVIDER"); fi
if [ $want_ipam -eq 1 ] && [ $want_provider -eq 1 ] && [ "$ipam_sum" != "$provider_sum" ]; then
  die "bin/$IPAM and bin/$PROVIDER differ: this release is not one executable under two names"
fi
if [ $kubelet_config -eq 1 ]; then
  config_sum=$(verify examples/kubelet/image-credential-provider-config.yaml)
  dropin_sum=$(verify examples/kubelet/20-berth-credential-provider.conf)
fi

if [ $want_ipam -eq 1 ]; then
  install_file "bin/$IPAM" "$ipam_dest" 0755 "$ipam_sum"
  if [ $want_provider -eq 1 ]; then install_link "$provider_dest"; fi
else
  install_file "bin/$PROVIDER" "$provider_dest" 0755 "$provider_sum"
fi
if [ $kubelet_config -eq 1 ]; then
  install_file examples/kubelet/image-credential-provider-config.yaml "$KUBELET_CONFIG" 0644 "$config_sum"
  install_file examples/kubelet/20-berth-credential-provider.conf "$KUBELET_DROPIN" 0644 "$dropin_sum"
fi

if [ $kubelet_config -eq 1 ] && [ $changed -gt 0 ]; then
  printf 'kubelet: run "systemctl daemon-reload && systemctl restart kubelet" to use the credential provider\n'
fi
