# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# A two-node Pacemaker/Corosync cluster with a quorum device on this one
# machine, for scripts/cluster-test.sh (after ../shared/pacemaker-ns): each
# node in its own network, mount, UTS and IPC namespaces, one interface each
# on a switch namespace, corosync-qnetd in a third namespace on the same
# switch.  ST (the caller's) holds each node's state and logs.
CL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODES="node1 node2"
declare -A IP=([node1]=10.98.0.1 [node2]=10.98.0.2)
declare -A NS=([node1]=rctc-n1 [node2]=rctc-n2)
QNETD_IP=10.98.0.3

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
now() { date +%s.%N; }
holder() { cat "$ST/$1/holder.pid"; }
other() { [ "$1" = node1 ] && echo node2 || echo node1; }

# Run a command in node $1's namespaces.
nx() {
    local n=$1
    shift
    nsenter -t "$(holder "$n")" -n -m -u -i --wd=/ -- env \
        PCMK_logfacility=none PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_debug=no "$@"
}

setup_net() {
    local i
    ip netns add rctc-sw
    ip -n rctc-sw link add br0 type bridge
    ip -n rctc-sw link set br0 up
    for i in 1 2 q; do
        local ns=rctc-n$i
        [ $i = q ] && ns=rctc-q
        ip netns add $ns
        ip link add rctcv$i type veth peer name rctcb$i
        ip link set rctcv$i netns $ns
        ip link set rctcb$i netns rctc-sw
        ip -n rctc-sw link set rctcb$i master br0 up
        ip -n $ns link set lo up
        ip -n $ns link set rctcv$i up
    done
    ip -n rctc-n1 addr add 10.98.0.1/24 dev rctcv1
    ip -n rctc-n2 addr add 10.98.0.2/24 dev rctcv2
    ip -n rctc-q addr add $QNETD_IP/24 dev rctcvq
}

teardown_net() {
    local ns
    for ns in rctc-n1 rctc-n2 rctc-q rctc-sw; do ip netns del $ns 2>/dev/null || true; done
    true
}

# Node $1's only link: down (cut from its peer and the quorum device) or up.
link() { ip -n "${NS[$1]}" link set "rctcv${1#node}" "$2"; }

write_corosync_conf() { # $1: token ms, or "" for Corosync's default
    cat <<CONF
totem {
    version: 2
    cluster_name: rctcluster
    transport: knet
    crypto_cipher: none
    crypto_hash: none
${1:+    token: $1}
}
nodelist {
    node {
        ring0_addr: 10.98.0.1
        name: node1
        nodeid: 1
    }
    node {
        ring0_addr: 10.98.0.2
        name: node2
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
    device {
        model: net
        votes: 1
        net {
            host: $QNETD_IP
            algorithm: ffsplit
            tls: off
        }
    }
}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: hires
}
CONF
}

mkstate() { # $1 node, $2 token
    local s=$ST/$1
    rm -rf "$s"
    mkdir -p "$s"/{etc-corosync/uidgid.d,var-lib-corosync,var-log-corosync,rctd-state}
    mkdir -p "$s"/var-lib-pacemaker/{cib,pengine,blackbox,cores} "$s"/var-log-pacemaker/bundles
    chown -R hacluster:haclient "$s"/var-lib-pacemaker "$s"/var-log-pacemaker
    chmod 0750 "$s"/var-lib-pacemaker/*
    chmod 0770 "$s"/var-log-pacemaker
    write_corosync_conf "$2" > "$s/etc-corosync/corosync.conf"
    # A CIB seeded with a short dc-deadtime: the first DC election is quick.
    cibadmin --empty > "$s/var-lib-pacemaker/cib/cib.xml"
    CIB_file="$s/var-lib-pacemaker/cib/cib.xml" crm_attribute -t crm_config -n dc-deadtime -v 2s
    chown hacluster:haclient "$s/var-lib-pacemaker/cib/cib.xml"
    chmod 0600 "$s/var-lib-pacemaker/cib/cib.xml"
}

# Boot node $1: its namespaces, corosync, qdevice, pacemaker, rctd.
start_node() {
    local n=$1
    rm -f "$ST/$n/holder.pid"
    ip netns exec "${NS[$n]}" unshare --mount --uts --ipc --propagation private -- \
        "$CL/node-init.sh" "$n" "$ST" > "$ST/$n/holder.out" 2>&1 &
    disown
    timeout 10 bash -c "until [ -s $ST/$n/holder.pid ]; do sleep 0.05; done" ||
        { log "$n: its namespaces did not come up: $(cat "$ST/$n/holder.out")"; return 1; }
    # What the fence agent needs to power the node off.
    readlink "/proc/$(holder "$n")/ns/net" > "$ST/fence/$n.netns"
    holder "$n" > "$ST/fence/$n.holder"
    rm -f "$ST/fence/$n.fenced"
    nx "$n" corosync -f > "$ST/$n/corosync.out" 2>&1 &
    disown
    timeout 20 bash -c ". $CL/lib.sh; ST=$ST; until nx $n corosync-cfgtool -s >/dev/null 2>&1; do sleep 0.1; done" ||
        { log "$n: corosync did not come up: $(tail -n 3 "$ST/$n/corosync.out")"; return 1; }
    nx "$n" corosync-qdevice -f > "$ST/$n/qdevice.out" 2>&1 &
    disown
    nx "$n" pacemakerd > "$ST/$n/pacemakerd.out" 2>&1 &
    disown
    start_rctd "$n"
}

# rctd on node $1, at the default socket (/run/rctd/rctd.sock, private per node).
start_rctd() {
    local n=$1
    nx "$n" "$RCTD" -k "$ST/psk" -S "$ST/$n/rctd-state" -H 100 -l info >> "$ST/$n/rctd.log" 2>&1 &
    disown
    timeout 10 bash -c ". $CL/lib.sh; ST=$ST; until nx $n test -S /run/rctd/rctd.sock; do sleep 0.05; done"
}

node_up() { [ -s "$ST/$1/holder.pid" ] && kill -0 "$(holder "$1")" 2>/dev/null; }

# Every pid in node $1's network namespace.
node_pids() {
    local want p
    want=$(cat "$ST/fence/$1.netns" 2>/dev/null) || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$want" ] && echo "${p#/proc/}"
    done
}

pid_of() { # $1 node, $2 comm
    local p
    for p in $(node_pids "$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && echo "$p"
    done
}

kill_node() {
    local n=$1 h p
    node_up "$n" || return 0
    h=$(holder "$n")
    for p in $(node_pids "$n"); do [ "$p" = "$h" ] || kill -9 "$p" 2>/dev/null || true; done
    kill -9 "$h" 2>/dev/null || true
    timeout 10 bash -c "while kill -0 $h 2>/dev/null; do sleep 0.05; done" || true
    rm -f "$ST/$n/holder.pid"
}

wait_online() { # both nodes online as node $1 sees them
    timeout "${2:-120}" bash -c ". $CL/lib.sh; ST=$ST
        until nx $1 crm_mon -1 2>/dev/null | grep -q 'Online: \[ node1 node2 \]'; do sleep 0.3; done"
}

# The node holding the promoted instance of clone resource $2, as node $1 sees it.
promoted_on() {
    nx "$1" crm_mon -1 --output-as=xml 2>/dev/null | python3 -c '
import sys, xml.etree.ElementTree as ET
try:
    root = ET.fromstring(sys.stdin.read())
except ET.ParseError:
    sys.exit(0)
for r in root.iter("resource"):
    if r.get("id") == sys.argv[1] and r.get("role") == "Promoted" and r.get("active") == "true":
        for n in r.iter("node"):
            print(n.get("name"))
            sys.exit(0)' "$2"
}
