#!/usr/bin/env bash
# npm run demo: the quick start's first command. Builds berth-ipam and runs it the way a runtime
# does (CNI_* in a clean environment, the network config on stdin) on the embedded default store,
# in a scratch data directory: ADD, a repeated ADD, CHECK, STATUS, DEL, GC.
set -euo pipefail
cd "$(dirname "$0")/.."
node packaging/build.ts >/dev/null
bin=dist/bin/berth-ipam
data=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$data"' EXIT

conf=$(cat <<JSON
{"cniVersion":"1.1.0","name":"demo","type":"bridge","ipam":{"type":"berth-ipam","dataDir":"$data",
 "ranges":[[{"subnet":"10.88.0.0/16"}],[{"subnet":"fd00:88::/64"}]],"routes":[{"dst":"0.0.0.0/0"}],
 "exclude":["10.88.0.2"]}}
JSON
)

cni() { # COMMAND CONTAINER-ID [extra stdin JSON merged in by the caller]
  local cmd=$1 id=$2 input=${3:-$conf}
  echo "\$ CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_IFNAME=eth0 $bin" >&2
  env -i CNI_COMMAND="$cmd" CNI_CONTAINERID="$id" CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 \
    CNI_PATH=/opt/cni/bin "$bin" <<<"$input"

}

echo "berth-ipam demo, store in $data/demo/berth.db"
result=$(cni ADD pod-a)
echo "$result"
cni ADD pod-a                     # a repeated ADD returns the same addresses
cni ADD pod-b
cni CHECK pod-a "${conf%\}}, \"prevResult\": $result}"
cni STATUS ""
cni DEL pod-a
cni GC "" "${conf%\}}, \"cni.dev/valid-attachments\": [{\"containerID\":\"pod-b\",\"ifname\":\"eth0\"}]}"
echo "demo: ADD, CHECK, STATUS, DEL and GC all succeeded"
