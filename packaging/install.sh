#!/usr/bin/env bash
# Installs berth on a node from an unpacked release (bin/, examples/, SHA256SUMS beside this script):
#   berth-ipam                 -> /opt/cni/bin                       (--cni-bin-dir)
#   berth-credential-provider  -> /usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec
#                                                                     (--credential-provider-bin-dir)
# Every file is checked against SHA256SUMS, copied to a temporary file in its destination directory,
# checked again, made executable and renamed over the old one: a container runtime or the kubelet
# exec'ing the plugin mid-upgrade gets the old binary or the new one, never half of one.
# A file that is already installed with the right content and mode is left alone (idempotent).
set -euo pipefail

readonly IPAM=berth-ipam
readonly PROVIDER=berth-credential-provider
# Beside the kubelet's default volume plugin dir (/usr/libexec/kubernetes/kubelet-plugins/volume/exec).
readonly DEFAULT_PROVIDER_BIN_DIR=/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec
readonly KUBELET_CONFIG=/etc/kubernetes/image-credential-provider-config.yaml
readonly KUBELET_DROPIN=/etc/systemd/system/kubelet.service.d/20-berth-credential-provider.conf

usage() {
  cat <<EOF
Usage: install.sh [options]

Installs ${IPAM} and ${PROVIDER} from this release onto the node.

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
  --skip-exec-check                  do not run each new binary with --version before installing it
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

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=/
cni_bin_dir=/opt/cni/bin
provider_bin_dir=$DEFAULT_PROVIDER_BIN_DIR
dry_run=0
uninstall=0
exec_check=1
kubelet_config=0
only=()

need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --cni-bin-dir) need_value "$@"; cni_bin_dir=$2; shift 2 ;;
    --cni-bin-dir=*) cni_bin_dir=${1#*=}; shift ;;
    --credential-provider-bin-dir) need_value "$@"; provider_bin_dir=$2; shift 2 ;;
    --credential-provider-bin-dir=*) provider_bin_dir=${1#*=}; shift ;;
    --only) need_value "$@"; only+=("$2"); shift 2 ;;
    --only=*) only+=("${1#*=}"); shift ;;
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

# Node paths, as the runtime and the kubelet see them (under --root, which may be relative).
for d in "$cni_bin_dir" "$provider_bin_dir"; do
  [[ $d == /* ]] || die "not an absolute path: $d"
done
[[ -d $root ]] || die "--root $root is not a directory"
root=$(cd "$root" && pwd)
[[ $root == / ]] && root=""
src_dir=$(cd "$src_dir" 2>/dev/null && pwd) || die "--source: no such directory"
if [[ $kubelet_config -eq 1 && $provider_bin_dir != "$DEFAULT_PROVIDER_BIN_DIR" ]]; then
  # The drop-in names the default directory; a kubelet pointed elsewhere would find no plugin.
  die "--kubelet-config installs a drop-in for $DEFAULT_PROVIDER_BIN_DIR; with another --credential-provider-bin-dir, edit examples/kubelet/20-berth-credential-provider.conf and install it yourself"
fi

want_ipam=0
want_provider=0
if [[ ${#only[@]} -eq 0 ]]; then
  want_ipam=1
  want_provider=1
fi
for o in "${only[@]}"; do
  case $o in
    ipam | "$IPAM") want_ipam=1 ;;
    credential-provider | "$PROVIDER") want_provider=1 ;;
    *) die "--only: unknown program '$o' (ipam or credential-provider)" ;;
  esac
done

# Each entry: source path relative to the release, destination (without --root), mode.
plan=()
[[ $want_ipam -eq 1 ]] && plan+=("bin/$IPAM|$cni_bin_dir/$IPAM|0755")
[[ $want_provider -eq 1 ]] && plan+=("bin/$PROVIDER|$provider_bin_dir/$PROVIDER|0755")
if [[ $kubelet_config -eq 1 ]]; then
  plan+=("examples/kubelet/image-credential-provider-config.yaml|$KUBELET_CONFIG|0644")
  plan+=("examples/kubelet/20-berth-credential-provider.conf|$KUBELET_DROPIN|0644")
fi

sha256() {
  local sum
  sum=$(sha256sum -- "$1") || return 1
  printf '%s\n' "${sum%% *}"
}

# The digest SHA256SUMS records for a path of the release ("<hex>  path" or "<hex> *path").
expected_sha256() {
  local line hex name
  [[ -f $src_dir/SHA256SUMS ]] || die "no SHA256SUMS in $src_dir: not an unpacked berth release"
  while IFS= read -r line || [[ -n $line ]]; do
    hex=${line%% *}
    name=${line#* }
    name=${name# }
    name=${name#\*}
    if [[ $name == "$1" ]]; then
      [[ $hex =~ ^[0-9a-f]{64}$ ]] || die "SHA256SUMS: malformed line for $1"
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
  if [[ $dry_run -eq 1 ]]; then
    printf 'would %s\n' "$*"
  else
    printf '%s\n' "$*"
  fi
}

tmp_file=""
changed=0
cleanup() {
  if [[ -n $tmp_file ]]; then
    rm -f -- "$tmp_file"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copies one verified file into place; prints what it did.
install_one() {
  local rel=$1 dest=$root$2 mode=$3 want=$4 dir got out
  dir=$(dirname -- "$dest")
  # The source already matched SHA256SUMS, so an identical file is the verified one.
  if [[ -f $dest && ! -L $dest ]] && cmp -s -- "$src_dir/$rel" "$dest" && [[ $(file_mode "$dest") == "${mode#0}" ]]; then
    printf 'unchanged %s\n' "$dest"
    return 0
  fi
  [[ -d $dest && ! -L $dest ]] && die "$dest is a directory"
  local verb=install
  [[ -e $dest || -L $dest ]] && verb=replace
  if [[ $dry_run -eq 1 ]]; then
    [[ -d $dir ]] || say "create directory $dir"
    say "$verb $dest (mode $mode, sha256 $want)"
    return 0
  fi
  mkdir -p -- "$dir" 2>/dev/null || die "cannot create $dir (run as root, or use --root)"
  tmp_file=$(mktemp -- "$dir/.${dest##*/}.XXXXXX" 2>/dev/null) || die "cannot write in $dir (run as root, or use --root)"
  cat -- "$src_dir/$rel" >"$tmp_file"
  # Checked again after the copy: what gets renamed into place is exactly what SHA256SUMS names.
  got=$(sha256 "$tmp_file")
  [[ $got == "$want" ]] || die "copy of $rel has sha256 $got, expected $want (disk full?); nothing replaced"
  chmod "$mode" -- "$tmp_file"
  if [[ $mode == 0755 && $exec_check -eq 1 ]]; then
    # Catches a release for another architecture or a host without libstdc++/libatomic before
    # the runtime does.
    if ! out=$(env -i "$tmp_file" --version </dev/null 2>&1); then
      die "$rel does not run on this machine (${out:-no output}); nothing replaced (see --skip-exec-check)"
    fi
  fi
  sync -- "$tmp_file" 2>/dev/null || true
  mv -f -T -- "$tmp_file" "$dest"
  tmp_file=""
  changed=$((changed + 1))
  sync -- "$dir" 2>/dev/null || true
  printf '%sed %s\n' "${verb%e}" "$dest"
}

uninstall_one() {
  local rel=$1 dest=$root$2 mode=$3
  if [[ ! -e $dest && ! -L $dest ]]; then
    printf 'absent %s\n' "$dest"
    return 0
  fi
  [[ -d $dest && ! -L $dest ]] && die "$dest is a directory; not removing it"
  # A config the administrator edited is theirs now.
  if [[ $mode == 0644 && -f $src_dir/$rel ]] && ! cmp -s -- "$src_dir/$rel" "$dest"; then
    printf 'kept %s (modified)\n' "$dest"
    return 0
  fi
  if [[ $dry_run -eq 1 ]]; then
    say "remove $dest"
    return 0
  fi
  rm -f -- "$dest"
  changed=$((changed + 1))
  printf 'removed %s\n' "$dest"
}

if [[ $uninstall -eq 1 ]]; then
  for entry in "${plan[@]}"; do
    IFS='|' read -r rel dest mode <<<"$entry"
    uninstall_one "$rel" "$dest" "$mode"
  done
  exit 0
fi

# Verify every source file before touching the node: all of the release or none of it.
sums=()
for entry in "${plan[@]}"; do
  IFS='|' read -r rel dest mode <<<"$entry"
  [[ -f $src_dir/$rel ]] || die "$src_dir/$rel not found (use --only to install one program)"
  want=$(expected_sha256 "$rel")
  got=$(sha256 "$src_dir/$rel")
  [[ $got == "$want" ]] || die "checksum mismatch for $rel: SHA256SUMS says $want, file has $got; refusing to install"
  sums+=("$want")
done

i=0
for entry in "${plan[@]}"; do
  IFS='|' read -r rel dest mode <<<"$entry"
  install_one "$rel" "$dest" "$mode" "${sums[$i]}"
  i=$((i + 1))
done

if [[ $kubelet_config -eq 1 && $changed -gt 0 ]]; then
  printf 'kubelet: run "systemctl daemon-reload && systemctl restart kubelet" to use the credential provider\n'
fi
