#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The network of a COLO deployment on one machine (issue 33): two hosts and a
# client as network namespaces on one switch (a bridge in a fourth), each
# host with a bridge that holds its uplink and a tap for its guest's NIC.
#
#   scripts/qemu/colo-net.sh up PREFIX      create (as root); prints the plan
#   scripts/qemu/colo-net.sh down PREFIX    remove everything PREFIX names
#   scripts/qemu/colo-net.sh cut|heal PREFIX HOST   the link of HOST (pri|sec)
#                                           to the switch down / up again
#
# Namespaces PREFIX-pri, PREFIX-sec, PREFIX-cli, PREFIX-sw; addresses
# 10.77.1.1 (pri, bridge brp, tap PREFIX-tap), 10.77.1.2 (sec, bridge brs, tap
# PREFIX-tap), 10.77.1.100 (cli); the guest is 10.77.1.10 on either tap.
# Run a program on a host: ip netns exec PREFIX-pri PROGRAM...
set -euo pipefail
case "${1:-}" in
    up|down|cut|heal) ;;
    -h|--help) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2;;
esac
op=$1
p=${2:?colo-net: a PREFIX (a few letters, unique on this machine)}
[[ $p =~ ^[a-z][a-z0-9]{0,5}$ ]] || { echo "colo-net: PREFIX '$p': 1-6 lower-case letters or digits, a letter first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "colo-net: network namespaces need root" >&2; exit 1; }

down() {
    for n in pri sec cli sw; do
        ip netns del "$p-$n" 2>/dev/null || true
    done
}

case $op in
down) down; exit 0;;
cut|heal)
    h=${3:?colo-net: $op needs a host, pri or sec}
    case $h in pri|sec) ;; *) echo "colo-net: host '$h': pri or sec" >&2; exit 2;; esac
    ip -n "$p-sw" link set "$p${h:0:1}-sw" "$([ "$op" = cut ] && echo down || echo up)"
    exit 0;;
esac

down
trap 'down' ERR
for n in pri sec cli sw; do
    ip netns add "$p-$n"
    ip -n "$p-$n" link set lo up
done
ip -n "$p-sw" link add br0 type bridge
ip -n "$p-sw" link set br0 up
# host: namespace, short name, address, bridge (none for the client)
for h in "pri p 10.77.1.1 brp" "sec s 10.77.1.2 brs" "cli c 10.77.1.100 -"; do
    read -r n s addr br <<<"$h"
    ip link add "$p$s-sw" netns "$p-sw" type veth peer name "$p$s-up" netns "$p-$n"
    ip -n "$p-sw" link set "$p$s-sw" master br0 up
    if [ "$br" = - ]; then
        ip -n "$p-$n" addr add "$addr/24" dev "$p$s-up"
        ip -n "$p-$n" link set "$p$s-up" up
        continue
    fi
    ip -n "$p-$n" link add "$br" type bridge
    ip -n "$p-$n" link set "$p$s-up" master "$br" up
    ip -n "$p-$n" tuntap add dev "$p-tap" mode tap
    ip -n "$p-$n" link set "$p-tap" master "$br" up
    ip -n "$p-$n" addr add "$addr/24" dev "$br"
    ip -n "$p-$n" link set "$br" up
done
# The bridges report "up" once the kernel's link watch has seen their ports'
# carrier (about a second); a program that lists running interfaces before
# then (UCX does, at start) would not see them.
for n in pri sec; do
    br=br${n:0:1}
    for _ in $(seq 50); do
        [ "$(ip netns exec "$p-$n" cat "/sys/class/net/$br/operstate")" = up ] && break
        sleep 0.1
    done
    [ "$(ip netns exec "$p-$n" cat "/sys/class/net/$br/operstate")" = up ] ||
        { echo "colo-net: $p-$n: bridge $br not up after 5 s" >&2; false; }
done
trap - ERR
echo "colo-net: $p-pri 10.77.1.1 (tap $p-tap), $p-sec 10.77.1.2 (tap $p-tap), $p-cli 10.77.1.100; guest 10.77.1.10"
