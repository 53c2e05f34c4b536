#!/usr/bin/env bash
# Builds the berth .deb with dpkg-deb from an unpacked release directory (what
# packaging/release.ts stages; the same bytes as the tarball, checked against its SHA256SUMS).
#   /opt/cni/bin/berth-ipam                          the one executable
#   /usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/
#                                                    where postinst links berth-credential-provider
#                                                    to it (hard link, or symbolic link across file
#                                                    systems); prerm removes that link
#   /usr/share/doc/berth/{README.md,copyright,sbom.cdx.json,examples/...}
# The kubelet config and drop-in are shipped as examples, not activated: restating the kubelet's
# ExecStart is right for kubeadm nodes only, so enabling it stays the administrator's decision.
set -euo pipefail

usage() {
  echo "Usage: build-deb.sh --source RELEASE_DIR --version VERSION --arch ARCH --out FILE.deb [--level 1-9] [--maintainer 'Name <email>']" >&2
  exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir="" version="" arch="" out="" level=6
maintainer=${DEB_MAINTAINER:-"berth maintainers <berth-maintainers@localhost>"}
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || usage
  case $1 in
    --source) source_dir=$2 ;;
    --version) version=$2 ;;
    --arch) arch=$2 ;;
    --out) out=$2 ;;
    --level) level=$2 ;;
    --maintainer) maintainer=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[[ -n $source_dir && -n $version && -n $arch && -n $out ]] || usage
[[ $level =~ ^[1-9]$ ]] || usage
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "build-deb.sh: invalid Debian version '$version'" >&2; exit 1; }

(cd "$source_dir" && sha256sum --check --quiet --strict SHA256SUMS) || {
  echo "build-deb.sh: $source_dir does not match its SHA256SUMS" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
pkg=$work/pkg
doc=$pkg/usr/share/doc/berth

install -d -m 0755 "$pkg/DEBIAN" "$pkg/opt/cni/bin" \
  "$pkg/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec" "$doc"
cmp -s "$source_dir/bin/berth-ipam" "$source_dir/bin/berth-credential-provider" || {
  echo "build-deb.sh: bin/berth-ipam and bin/berth-credential-provider are not one executable" >&2
  exit 1
}
install -m 0755 "$source_dir/bin/berth-ipam" "$pkg/opt/cni/bin/berth-ipam"
install -m 0755 "$here/postinst" "$here/prerm" "$pkg/DEBIAN/"
install -m 0644 "$source_dir/README.md" "$doc/README.md"
install -m 0644 "$source_dir/sbom.cdx.json" "$doc/sbom.cdx.json"
install -m 0644 "$here/copyright" "$doc/copyright"
(cd "$source_dir" && find examples -type f -print0) | while IFS= read -r -d '' f; do
  install -D -m 0644 "$source_dir/$f" "$doc/$f"
done

installed_size=$(du -k -s --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$installed_size|" \
  -e "s|@MAINTAINER@|$maintainer|" "$here/control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zgzip "-z$level" --build "$pkg" "$out.tmp" >/dev/null
mv -f "$out.tmp" "$out"
echo "built $out"
