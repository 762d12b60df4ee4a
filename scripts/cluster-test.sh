#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Failover decided by a real cluster manager: two Pacemaker/Corosync nodes on
# this machine (network and mount namespaces, scripts/cluster/lib.sh) with a
# quorum device (corosync-qnetd in a third namespace) and a fence device that
# powers a node off (scripts/cluster/fence_rctns), each node running rctd and
# one QEMU of a COLO pair managed by the OCF agent ocf:rct:rct-colo.
#   - ocf-tester on the agent (scripts/ocf/ocf-test.sh);
#   - per Corosync token (1000 ms, then the default 3000): the pair comes up
#     replicating with one Promoted, the frozen guest's RAM equal on both nodes
#     byte for byte; then kill -9 of the Promoted node's QEMU, of its rctd, and
#     a cut of its link: each must end with the other node Promoted (within
#     120 s), its guest running on from its own state (the heartbeat counter
#     on its serial console goes on, no reboot), never two Promoted instances
#     (both nodes' own views, sampled all along), and the old primary back as
#     an in-sync secondary; then kill -9 of the Unpromoted node's rctd and of
#     its QEMU: the Promoted node stays Promoted and its guest, stopped when
#     COLO ended, runs again within a bound measured here, never two running
#     guests (both QEMUs sampled), the secondary back in sync; the RAM
#     compared again at the end;
#   - the same cluster with ocf:pacemaker:Stateful for the baseline: the same
#     faults (its promoted instance's state lost, its link cut).
# Last line:
#   cluster: T trials, P promoted once, D double primaries, failover max S s, stateful baseline B s,
#   U unpromoted faults, primary running again max R s
# (S: fault to the other node Promoted in the worst trial; B: the worst of the
# Stateful trials; R: the worst fault on the Unpromoted node to the primary's
# guest running again.)  Before it, with RCT_CLUSTER_STALL_S:
#   cluster-stall: S s beside rct-stall, C checkpoints, false losses L, failed actions F,
#   promotions M, in sync after: yes|no
# Per-trial figures: WORK/cluster.json.
#
#   scripts/cluster-test.sh RCT_BUILD_DIR [QEMU]
#   RCT_CLUSTER_TOKENS   tokens to run (default "1000 default")
#   RCT_CLUSTER_FAULTS   faults to inject (default "kill-qemu kill-rctd link-cut kill-sec-rctd kill-sec-qemu")
#   RCT_CLUSTER_ST_FAULTS  the baseline's (default "lose-state link-cut")
#   RCT_CLUSTER_KEEP     1: keep the work folder (logs) even when everything passed
#   RCT_CLUSTER_STALL_S  seconds the replicating pair runs beside rct-stall (page-fault storm,
#                        a spinning thread per core, both rctd SIGSTOPped 80 ms every second)
#                        before the first token's faults (default 60; 0: none): a slow host is
#                        no fault, so no loss in either rctd's log, no failed action, no
#                        promotion, the pair in sync and checkpointing after it
#   RCT_CLUSTER_NEIGHBOUR  1: a second COLO pair (scripts/qemu/colo-pair.py, tcp) replicates
#                        beside the cluster all along (the agent's cost on a busy host)
#   RCT_CLUSTER_RCTD_RESTART_S  seconds before a killed rctd starts again (default 5: later than
#                        Pacemaker stops and starts the failed instance there, ~2-3 s, so that
#                        start meets no rctd and must wait for it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    ""|-h|--help) sed -n '3,45p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
build=$(cd "$1" && pwd)
[ "$(id -u)" = 0 ] || { echo "cluster-test: needs root (namespaces)" >&2; exit 2; }
# The system's tools first, as a node's services find them (not a user's
# python shims: the agent's every QMP call is a python3).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
qemu=${2:-$("$here/qemu/build.sh" | tail -n 1)}
RESTART_S=${RCT_CLUSTER_RCTD_RESTART_S:-5}
export RCTD=$build/daemon/rctd RCTCTL=$build/daemon/rctctl
. "$here/cluster/lib.sh"
ST=$(mktemp -d /tmp/rct-cluster.XXXXXX)
export ST
mkdir -p "$ST/fence"
echo "cluster-test: QEMU $qemu, work folder $ST"

[ "${RCT_CLUSTER_SKIP_OCF:-0}" = 1 ] || "$here/ocf/ocf-test.sh" "$build" "$qemu" | tail -n 1

# The agents where Pacemaker looks for them (as cmake --install puts them).
# This tree's, whatever is there: an installed agent waits aside meanwhile.
links=()
link_agent() {
    mkdir -p "$(dirname "$2")"
    if [ -e "$2" ] && [ ! -L "$2" ]; then
        mv "$2" "$2.rct-cluster-test"
    fi
    ln -sfn "$1" "$2"
    links+=("$2")
}
link_agent "$here/ocf/rct-colo" /usr/lib/ocf/resource.d/rct/rct-colo
link_agent "$here/cluster/fence_rctns" /usr/sbin/fence_rctns
qnetd_pid=
cleanup() {
    local n rc=$?
    set +e
    for n in $NODES; do kill_node "$n" 2>/dev/null || true; done
    [ -n "$qnetd_pid" ] && kill -9 "$qnetd_pid" 2>/dev/null
    [ -n "${neighbour:-}" ] && kill "$neighbour" 2>/dev/null && wait "$neighbour" 2>/dev/null
    teardown_net
    for l in "${links[@]}"; do
        rm -f "$l"
        [ -e "$l.rct-cluster-test" ] && mv "$l.rct-cluster-test" "$l"
    done
    rmdir /usr/lib/ocf/resource.d/rct 2>/dev/null || true
    [ "${keep:-0}" = 1 ] || rm -rf "$ST"
    exit $rc
}
trap cleanup EXIT
keep=1

"$here/qemu/guest/build-guest.sh" "$ST/guest.elf" 40 >/dev/null
head -c 32 /dev/urandom > "$ST/psk"
chmod 0600 "$ST/psk"
head -c 32 /dev/urandom > "$ST/pairing-key"
chmod 0644 "$ST/pairing-key" "$ST/guest.elf"
PAIRING=colo-vm
AGENT_DIR=/run/resource-agents/rct-colo-colo

boot_cluster() { # $1 token
    local n
    teardown_net
    setup_net
    ip netns exec rctc-q corosync-qnetd -f -s off > "$ST/qnetd.out" 2>&1 &
    qnetd_pid=$!
    for n in $NODES; do mkstate "$n" "$1"; done
    for n in $NODES; do start_node "$n"; done
    wait_online node1 120
}

cib_base() {
    nx node1 cibadmin --modify --xml-text '<crm_config><cluster_property_set id="cib-bootstrap-options">
      <nvpair id="o-stonith" name="stonith-enabled" value="true"/>
      <nvpair id="o-nq" name="no-quorum-policy" value="stop"/>
      <nvpair id="o-st" name="stonith-timeout" value="30s"/>
      </cluster_property_set></crm_config>' --scope crm_config
    nx node1 cibadmin --create --scope resources --xml-text "<primitive id=\"fence\" class=\"stonith\" type=\"fence_rctns\">
      <instance_attributes id=\"fence-ia\">
        <nvpair id=\"fence-sd\" name=\"statedir\" value=\"$ST/fence\"/>
        <nvpair id=\"fence-hl\" name=\"pcmk_host_list\" value=\"node1 node2\"/>
      </instance_attributes>
      <operations><op id=\"fence-mon\" name=\"monitor\" interval=\"60s\"/></operations></primitive>"
}

# A promotable clone $1 of primitive $2 (class:provider:type $3:$4:$5), its instance attributes $6.
cib_clone() {
    nx node1 cibadmin --create --scope resources --xml-text "<clone id=\"$1\">
      <meta_attributes id=\"$1-meta\">
        <nvpair id=\"$1-p\" name=\"promotable\" value=\"true\"/>
        <nvpair id=\"$1-pm\" name=\"promoted-max\" value=\"1\"/>
        <nvpair id=\"$1-pnm\" name=\"promoted-node-max\" value=\"1\"/>
        <nvpair id=\"$1-cm\" name=\"clone-max\" value=\"2\"/>
        <nvpair id=\"$1-cnm\" name=\"clone-node-max\" value=\"1\"/>
        <nvpair id=\"$1-n\" name=\"notify\" value=\"true\"/>
        <nvpair id=\"$1-mt\" name=\"migration-threshold\" value=\"1\"/>
      </meta_attributes>
      <primitive id=\"$2\" class=\"$3\" provider=\"$4\" type=\"$5\">
        <instance_attributes id=\"$2-ia\">$6</instance_attributes>
        <operations>
          <op id=\"$2-mp\" name=\"monitor\" interval=\"1s\" role=\"Promoted\" timeout=\"20s\"/>
          <op id=\"$2-mu\" name=\"monitor\" interval=\"2s\" role=\"Unpromoted\" timeout=\"20s\"/>
          <op id=\"$2-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>
          <op id=\"$2-stop\" name=\"stop\" interval=\"0\" timeout=\"60s\"/>
          <op id=\"$2-promote\" name=\"promote\" interval=\"0\" timeout=\"60s\"/>
          <op id=\"$2-demote\" name=\"demote\" interval=\"0\" timeout=\"60s\"/>
          <op id=\"$2-notify\" name=\"notify\" interval=\"0\" timeout=\"30s\"/>
        </operations></primitive></clone>"
}

nv() { printf '<nvpair id="colo-%s" name="%s" value="%s"/>' "$1" "$1" "$2"; }

CHECKPOINT_DELAY_MS=300
colo_attrs() {
    nv pairing "$PAIRING"
    nv pairing_key "$ST/pairing-key"
    nv nodes "node1=${IP[node1]} node2=${IP[node2]}"
    nv kernel "$ST/guest.elf"
    nv qemu "$qemu"
    nv rctctl "$RCTCTL"
    nv memory_mb 64
    nv checkpoint_delay_ms "$CHECKPOINT_DELAY_MS"
}

# The agent's files on node $1.
serial_hbs() { nx "$1" cat "$AGENT_DIR/serial.log" 2>/dev/null | sed -n 's/^HB \([0-9A-Fa-f]\{8\}\).*/\1/p'; }
pairing_json() { nx "$1" "$RCTCTL" pairing show "$PAIRING" --json 2>/dev/null; }
jfield() { python3 -c 'import json,sys
v=json.loads(sys.stdin.read() or "null")
for k in sys.argv[1].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else v)' "$1"; }

# Both ends of the pair: $1 Promoted with a primary QEMU, $2 an in-sync secondary.
wait_pair() { # $1 resource id; prints the primary
    local p='' s _
    for _ in $(seq 600); do
        p=$(promoted_on node1 "$1" || true)
        [ -n "$p" ] || p=$(promoted_on node2 "$1" || true)
        if [ -n "$p" ]; then
            s=$(other "$p")
            [ "$1" != colo ] && { echo "$p"; return 0; }
            [ "$(pairing_json "$s" | jfield session.replication)" = "in sync" ] &&
                [ "$(pairing_json "$s" | jfield session.role)" = secondary ] && { echo "$p"; return 0; }
        fi
        sleep 0.5
    done
    log "no replicating pair in 300 s (promoted: '${p}')"
    keep_state "no-pair"
    return 1
}

# What each node saw, kept for a failure: $ST/failed.HHMMSS.WHY/ holds both
# nodes' rctd, Pacemaker and agent files (QEMU's log, its serial console);
# the cluster's view and each side's pairing go to the log as well.
keep_state() { # $1 why (one word)
    local n d
    d=$ST/failed.$(date +%H%M%S).$1
    mkdir -p "$d"
    for n in $NODES; do
        mkdir -p "$d/$n"
        cp "$ST/$n/rctd.log" "$ST/$n/var-log-pacemaker/pacemaker.log" "$d/$n/" 2>/dev/null || true
        node_up "$n" || continue
        nx "$n" tar -C "$AGENT_DIR" -cf - . 2>/dev/null | tar -C "$d/$n" -xf - 2>/dev/null || true
        log "$n's view: $(nx "$n" crm_mon -1 2>&1 | grep -E 'Promoted|Unpromoted|Stopped|Failed|failed|FAILED' | tr -s ' \n' ' ' | head -c 600)"
        log "$n's pairing: $(pairing_json "$n" | tr -d '\n' | head -c 600)"
    done
    log "kept in $d"
}

# Freeze the guest, hold the checkpoints back, compare both RAM files byte for
# byte.  No QMP stop/cont while COLO runs: a 'cont' inside a checkpoint's
# vm_stop resumes the vCPUs it waits for, and that COLO thread hangs
# (scripts/qemu/colo-pair.py, consistency()).  Two checkpoints after the
# freeze, then x-checkpoint-delay of an hour (setting it starts one at once);
# the RAM is compared once that one ended (epoch moved, both QEMUs running),
# and again if a checkpoint ran during the comparison.
quiet_state() { # $1 primary $2 secondary: "EPOCH PRI_STATUS SEC_STATUS"
    local e a b
    e=$(pairing_json "$1" | jfield session.last_committed_epoch)
    a=$(nx "$1" python3 "$CL/qmp.py" qmp "$AGENT_DIR/qmp.sock" query-status | jfield status)
    b=$(nx "$2" python3 "$CL/qmp.py" qmp "$AGENT_DIR/qmp.sock" query-status | jfield status)
    echo "${e:-none} ${a:-none} ${b:-none}"
}
compare_ram() { # $1 primary
    local p=$1 s e0 e rc=1 st st2 se sa sb try ram=/dev/shm/rct-colo-$PAIRING.ram
    s=$(other "$p")
    nx "$p" python3 "$CL/qmp.py" serial "$AGENT_DIR/serial.sock" F
    e0=$(pairing_json "$p" | jfield session.last_committed_epoch)
    for _ in $(seq 200); do
        e=$(pairing_json "$p" | jfield session.last_committed_epoch)
        [ -n "$e" ] && [ -n "$e0" ] && [ "$e" -ge $((e0 + 2)) ] && break
        sleep 0.1
    done
    nx "$p" python3 "$CL/qmp.py" qmp "$AGENT_DIR/qmp.sock" \
        'migrate-set-parameters={"x-checkpoint-delay":3600000}' >/dev/null
    for try in 1 2 3 4 5; do
        for _ in $(seq 200); do
            st=$(quiet_state "$p" "$s")
            read -r se sa sb <<<"$st"
            [ "$se" != none ] && [ -n "$e" ] && [ "$se" -gt "$e" ] && [ "$sa" = running ] &&
                [ "$sb" = running ] && break
            sleep 0.1
        done
        nx "$p" cat "$ram" > "$ST/ram.$p"
        nx "$s" cat "$ram" > "$ST/ram.$s"
        st2=$(quiet_state "$p" "$s")
        if [ "$st2" = "$st" ]; then
            rc=0
            cmp -s "$ST/ram.$p" "$ST/ram.$s" || rc=1
            [ $rc = 0 ] || log "RAM differs ($st): $(cmp "$ST/ram.$p" "$ST/ram.$s" | head -1)"
            break
        fi
        log "compare_ram: a checkpoint ran during the comparison ($st, then $st2); again ($try)"
    done
    rm -f "$ST/ram.$p" "$ST/ram.$s"
    nx "$p" python3 "$CL/qmp.py" qmp "$AGENT_DIR/qmp.sock" \
        "migrate-set-parameters={\"x-checkpoint-delay\":$CHECKPOINT_DELAY_MS}" >/dev/null
    nx "$p" python3 "$CL/qmp.py" serial "$AGENT_DIR/serial.sock" U
    return $rc
}

# Where a trial's time went, from both nodes' Pacemaker logs (one clock):
# "DETECT DECIDE PROMOTE" in seconds: the fault ($4, epoch seconds) to the
# first failed monitor of resource $1 on node $2 (the agent's monitor: its
# interval and its own run time), that to the promote of the instance on
# $3 beginning (Pacemaker's fail count and scheduling, the failed
# instance's demote and stop, the notifications), and the promote itself;
# "nan" where the log has no such line (a cut link is Corosync's to detect).
phases() {
    python3 - "$ST" "$1" "$2" "$3" "$4" <<'PY'
import datetime, glob, re, sys
st, rsc, failed, promoted, t0 = sys.argv[1:]
t0 = float(t0)
day = datetime.datetime.fromtimestamp(t0)
def when(line):
    m = re.match(r"\w+ \d+ (\d\d):(\d\d):(\d\d)\.(\d{3}) ", line)
    if not m:
        return None
    h, mi, se, ms = map(int, m.groups())
    return day.replace(hour=h, minute=mi, second=se, microsecond=ms * 1000).timestamp()
lines = []
for f in glob.glob(st + "/node*/var-log-pacemaker/pacemaker.log"):
    with open(f, errors="replace") as fh:
        for line in fh:
            t = when(line)
            if t is not None and t >= t0 - 0.001:
                lines.append((t, line))
lines.sort()
def first(pat, after):
    r = re.compile(pat)
    return next((t for t, l in lines if t >= after and r.search(l)), None)
fail = first(r"Result of monitor operation for %s on %s: .*(failed|error|not running)" % (rsc, failed), t0)
begin = first(r"Initiating promote operation %s_promote_0" % rsc, fail or t0)
done = first(r"Result of promote operation for %s on %s: ok" % (rsc, promoted), begin or t0)
def d(a, b):
    return "%.2f" % (b - a) if a is not None and b is not None else "nan"
print(d(t0, fail), d(fail, begin), d(begin, done))
PY
}

# Whether node $1's cluster counts a failure of resource $3 on node $2.
failed_on() {
    local v
    v=$(nx "$1" crm_failcount --query -r "$3" -N "$2" 2>/dev/null | sed -n 's/.*value=\([0-9A-Za-z]*\).*/\1/p')
    [ -n "$v" ] && [ "$v" != 0 ]
}

# The operator's cleanup of resource $3's failure on node $2, from node $1,
# once Pacemaker counted it ($4 "counted": its fail count, written ~1 s after
# the failed action shows in the history; a cleanup between the two is undone
# by the count that follows, and the instance stays banned from that node)
# and the cluster settled (a cleanup in the middle of a transition cancels
# its operations: a monitor of the instance just promoted, cancelled that
# way, counts as its failure and the new primary is stopped).
cleanup_failed() {
    local _
    if [ "${4:-}" = counted ]; then
        for _ in $(seq 300); do failed_on "$1" "$2" "$3" && break; sleep 0.1; done
        failed_on "$1" "$2" "$3" || log "$3's failure on $2 was never counted"
    fi
    nx "$1" crm_resource --wait -T 60s >/dev/null 2>&1 || log "the cluster did not settle within 60 s"
    nx "$1" crm_resource --cleanup -r "$3-clone" -N "$2" >/dev/null 2>&1 || true
}

results=()
T=0 P=0 D=0 S_MAX=0 B_MAX=0 FAIL=0

# One fault on the Promoted node of resource $1: $2 kill-qemu | kill-rctd | link-cut | lose-state.
trial() {
    local rsc=$1 fault=$2 token=$3 p s t0 t1 dbl=0 seen a b hb_before hb_lines ok=true why="" ph_d ph_s ph_p
    p=$(wait_pair "$rsc") || { FAIL=1; return 0; }
    s=$(other "$p")
    if [ "$rsc" = colo ]; then
        # The guest's heartbeat as the primary printed it last, and how much
        # of the secondary's console there is so far.
        hb_before=$(serial_hbs "$p" | tail -n 1)
        hb_lines=$(serial_hbs "$s" | wc -l)
    fi
    log "$rsc token $token: $fault on $p (the Promoted node)"
    t0=$(now)
    case $fault in
    kill-qemu) kill -9 "$(pid_of "$p" qemu-system-x86)" ;;
    kill-rctd)
        kill -9 "$(pid_of "$p" rctd)"
        # What systemd's Restart= does for the unit, a second later.
        (sleep "$RESTART_S"; start_rctd "$p") &
        ;;
    link-cut) link "$p" down ;;
    lose-state) nx "$p" sh -c 'rm -f /run/Stateful-st*.state /run/resource-agents/Stateful-st*.state' ;;
    esac
    seen=""
    while :; do
        a=""; b=""
        node_up "$p" && [ ! -e "$ST/fence/$p.fenced" ] && a=$(promoted_on "$p" "$rsc" || true)
        b=$(promoted_on "$s" "$rsc" || true)
        [ "$a" = "$p" ] && [ "$b" = "$s" ] && dbl=$((dbl + 1))
        if [ "$b" = "$s" ]; then seen=$(now); break; fi
        if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) - float(sys.argv[2]) > 120 else 1)" "$(now)" "$t0"; then
            break
        fi
        sleep 0.1
    done
    if [ "$rsc" = colo ]; then
        T=$((T + 1))
        D=$((D + dbl))
    fi
    if [ -z "$seen" ]; then
        ok=false why="$s not Promoted within 120 s"
        t1=nan
    else
        [ "$rsc" = colo ] && P=$((P + 1))
        t1=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$seen" "$t0")
    fi
    [ $dbl = 0 ] || { ok=false; why="$why two Promoted ($dbl samples)"; }
    local ph
    ph=$(phases "$rsc" "$p" "$s" "$t0" 2>/dev/null) || ph="nan nan nan"
    log "$rsc token $token: $fault: $s Promoted after $t1 s (detected $(echo "$ph" | cut -d' ' -f1) s, promote begun $(echo "$ph" | cut -d' ' -f2) s later, took $(echo "$ph" | cut -d' ' -f3) s), double primaries in $dbl samples"
    # The old primary comes back: a fenced node boots again, a failed
    # instance is cleaned up (migration-threshold=1 banned it).
    if [ "$fault" = link-cut ]; then
        for _ in $(seq 300); do [ -e "$ST/fence/$p.fenced" ] && break; sleep 0.1; done
        [ -e "$ST/fence/$p.fenced" ] || { ok=false; why="$why $p never fenced"; }
        kill_node "$p"
        link "$p" up 2>/dev/null || true
        start_node "$p"
    fi
    if [ "$fault" = link-cut ]; then
        cleanup_failed "$s" "$p" "$rsc" # fenced: its fail counts went with it
    else
        cleanup_failed "$s" "$p" "$rsc" counted
    fi
    if [ "$rsc" = colo ]; then
        local back
        back=$(wait_pair colo) || back=""
        [ "$back" = "$s" ] || { ok=false; why="$why $p did not come back as an in-sync secondary"; }
        # Its own state: what the new primary's guest printed since the fault
        # goes on from the old primary's last heartbeat (a checkpoint behind
        # at most), never from a reboot.
        if [ -z "$hb_before" ] || ! serial_hbs "$s" | tail -n +$((hb_lines + 1)) | python3 -c '
import sys
b = int(sys.argv[1], 16)
new = [int(x, 16) for x in sys.stdin.read().split() if x]
sys.exit(0 if len(new) >= 2 and new[0] >= b - 2 and new == sorted(new) else 1)' "$hb_before"; then
            ok=false why="$why the guest on $s did not run on (HB $hb_before, then $(serial_hbs "$s" | tail -n +$((hb_lines + 1)) | head -n 3 | tr '\n' ' ')...)"
        fi
    else
        wait_pair "$rsc" >/dev/null || { ok=false; why="$why $p did not come back"; }
    fi
    if [ "$rsc" = colo ]; then
        python3 -c "import sys; sys.exit(0 if sys.argv[1] != 'nan' and float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$t1" "$S_MAX" && S_MAX=$t1
    else
        python3 -c "import sys; sys.exit(0 if sys.argv[1] != 'nan' and float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$t1" "$B_MAX" && B_MAX=$t1
    fi
    $ok || { FAIL=1; log "$rsc token $token: $fault FAILED:$why"; keep_state "$rsc-$fault"; }
    read -r ph_d ph_s ph_p <<<"$ph"
    results+=("{\"resource\": \"$rsc\", \"token_ms\": \"$token\", \"fault\": \"$fault\", \"victim\": \"$p\", \"promoted\": \"$s\", \"fault_to_promoted_s\": \"$t1\", \"detect_s\": \"$ph_d\", \"failure_to_promote_s\": \"$ph_s\", \"promote_s\": \"$ph_p\", \"double_primary_samples\": $dbl, \"ok\": $ok}")
}

# Node $1's QEMU: "STATUS MODE", or "gone".
qemu_state() {
    nx "$1" python3 "$CL/qmp.py" qmp "$AGENT_DIR/qmp-observe.sock" query-status query-colo-status \
        2>/dev/null | python3 -c 'import json, sys
l = [json.loads(x) for x in sys.stdin.read().split("\n") if x]
print("%s %s" % (l[0]["status"], l[1]["mode"]) if len(l) == 2 else "gone")'
}

# One fault on the Unpromoted node (the secondary) of rct-colo: $1
# kill-sec-rctd | kill-sec-qemu.  The Promoted node stays Promoted (never two,
# the secondary never Promoted), its guest stopped by COLO's end runs again
# within a bound measured here (the agent resumes it: x-colo-lost-heartbeat),
# never two running guests outside a replicating pair (both QEMUs sampled),
# and the secondary rejoins in sync.
U=0 R_MAX=0
unpromoted_trial() {
    local fault=$1 token=$2 p s t0 t1=nan tr="" dbl=0 drun=0 a b ps ss ok=true why="" hb_before
    p=$(wait_pair colo) || { FAIL=1; return 0; }
    s=$(other "$p")
    hb_before=$(serial_hbs "$p" | tail -n 1)
    log "colo token $token: $fault on $s (the Unpromoted node)"
    t0=$(now)
    case $fault in
    kill-sec-rctd)
        kill -9 "$(pid_of "$s" rctd)"
        (sleep "$RESTART_S"; start_rctd "$s") & # what systemd's Restart= does, a moment later
        ;;
    kill-sec-qemu) kill -9 "$(pid_of "$s" qemu-system-x86)" ;;
    esac
    while :; do
        a=$(promoted_on "$p" colo || true)
        b=$(promoted_on "$s" colo || true)
        [ "$b" = "$s" ] && dbl=$((dbl + 1))
        ps=$(qemu_state "$p" || echo gone)
        ss=$(qemu_state "$s" || echo gone)
        case "$ps/$ss" in
        "running primary/running secondary") ;;
        running*/running*) drun=$((drun + 1)) ;;
        esac
        if [ -z "$tr" ] && [ "$ps" = "running none" ] && [ "$a" = "$p" ]; then
            tr=$(now)
            t1=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$tr" "$t0")
            break
        fi
        if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) - float(sys.argv[2]) > 60 else 1)" "$(now)" "$t0"; then
            ok=false why="the primary's guest did not run again within 60 s (last: $ps)"
            break
        fi
        sleep 0.1
    done
    log "colo token $token: $fault: the primary on $p running again after $t1 s"
    # The failed secondary's instance: Pacemaker records the failure
    # (migration-threshold=1 then keeps it off its node), the operator's
    # cleanup lets it start again there.
    cleanup_failed "$p" "$s" colo counted
    local back
    back=$(wait_pair colo) || back=""
    [ "$back" = "$p" ] || { ok=false; why="$why $s did not rejoin as an in-sync secondary of $p"; }
    # No two Promoted, the secondary never Promoted, no two running guests.
    [ $dbl = 0 ] || { ok=false; why="$why $s Promoted ($dbl samples)"; }
    [ $drun = 0 ] || { ok=false; why="$why two running guests ($drun samples)"; }
    # The primary's guest ran on from its own state, never rebooted: its
    # heartbeat counts on from the last one before the fault (within 10 s:
    # the resync stops it for a while).
    local ran=false
    for _ in $(seq 100); do
        if [ -n "$hb_before" ] && serial_hbs "$p" | python3 -c '
import sys
b = int(sys.argv[1], 16)
hbs = [int(x, 16) for x in sys.stdin.read().split() if x]
sys.exit(0 if hbs and hbs[-1] > b and hbs == sorted(hbs) else 1)' "$hb_before"; then
            ran=true
            break
        fi
        sleep 0.1
    done
    $ran || { ok=false; why="$why the primary's guest did not run on (HB $hb_before, now $(serial_hbs "$p" | tail -n 1))"; }
    U=$((U + 1))
    D=$((D + dbl))
    python3 -c "import sys; sys.exit(0 if sys.argv[1] != 'nan' and float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$t1" "$R_MAX" && R_MAX=$t1
    $ok || { FAIL=1; log "colo token $token: $fault FAILED:$why"; keep_state "$fault"; }
    results+=("{\"resource\": \"colo\", \"token_ms\": \"$token\", \"fault\": \"$fault\", \"victim\": \"$s\", \"promoted\": \"$p\", \"fault_to_primary_running_s\": \"$t1\", \"double_primary_samples\": $dbl, \"two_running_samples\": $drun, \"ok\": $ok}")
}

# The replicating pair beside rct-stall for $1 s: a slow host is no fault.
# Both nodes' rctd are stopped 80 ms every second (their pids in a file
# rct-stall reads), the host faults 1 GiB a loop and spins a thread per
# core.  Sampled all along: the Promoted node stays the one it was (never
# two, never none); after it: no loss in either rctd's log, no failed action
# in the cluster, the pair in sync and checkpointing.
STALL_LINE=""
stall_trial() { # $1 seconds, $2 token
    local secs=$1 token=$2 p s n l0 l1 e0 e1 moved=0 t0 a b fails insync=no
    p=$(wait_pair colo) || { FAIL=1; return 0; }
    s=$(other "$p")
    : > "$ST/stall.pids"
    for n in $NODES; do pid_of "$n" rctd >> "$ST/stall.pids" || true; done
    l0=$(cat "$ST"/node1/rctd.log "$ST"/node2/rctd.log | grep -c 'peer lost\|primary lost\|secondary lost' || true)
    e0=$(pairing_json "$p" | jfield session.last_committed_epoch)
    log "colo token $token: the pair ($p Promoted) beside rct-stall for $secs s"
    "$build/test/rct-stall" --seconds "$secs" --faults 1024 --spin "$(nproc)" \
        --stop-pids "$ST/stall.pids" --stop-ms 80 --every-ms 1000 > "$ST/rct-stall.out" 2>&1 &
    local stall=$!
    t0=$(date +%s)
    while kill -0 "$stall" 2>/dev/null; do
        a=$(promoted_on "$p" colo || true)
        b=$(promoted_on "$s" colo || true)
        [ "$a" = "$p" ] && [ "$b" != "$s" ] || moved=$((moved + 1))
        [ $(($(date +%s) - t0)) -gt $((secs + 120)) ] && { kill "$stall"; break; }
        sleep 0.5
    done
    wait "$stall" 2>/dev/null || true
    sed 's/^/  /' "$ST/rct-stall.out" >&2
    l1=$(cat "$ST"/node1/rctd.log "$ST"/node2/rctd.log | grep -c 'peer lost\|primary lost\|secondary lost' || true)
    fails=$(nx "$p" crm_mon -1 --output-as=xml 2>/dev/null | grep -c '<failure ' || true)
    if [ "$(wait_pair colo)" = "$p" ]; then
        # Checkpointing after it: two more epochs committed.
        for _ in $(seq 100); do
            e1=$(pairing_json "$p" | jfield session.last_committed_epoch)
            [ -n "$e1" ] && [ -n "$e0" ] && [ "$e1" -ge $((e0 + 2)) ] && { insync=yes; break; }
            sleep 0.1
        done
    fi
    STALL_LINE="cluster-stall: $secs s beside rct-stall, $(( ${e1:-0} - ${e0:-0} )) checkpoints, false losses $((l1 - l0)), failed actions $fails, promotions $moved, in sync after: $insync"
    log "$STALL_LINE"
    [ $((l1 - l0)) = 0 ] && [ "$fails" = 0 ] && [ $moved = 0 ] && [ $insync = yes ] ||
        { FAIL=1; keep_state stall; }
}

# A second COLO pair beside the cluster (RCT_CLUSTER_NEIGHBOUR=1): the
# cluster's agent works on a busy host.
neighbour=
if [ "${RCT_CLUSTER_NEIGHBOUR:-0}" = 1 ]; then
    "$here/qemu/colo-pair.py" --qemu "$qemu" --rctd "$RCTD" --guest "$ST/guest.elf" --mode rct \
        --backend tcp --lanes 4 --checkpoints 1000000 --kill none --workdir "$ST/neighbour" \
        > "$ST/neighbour.out" 2>&1 &
    neighbour=$!
    log "a neighbour COLO pair (tcp) replicates beside the cluster (pid $neighbour)"
fi

STALL_S=${RCT_CLUSTER_STALL_S:-60}
for token in ${RCT_CLUSTER_TOKENS:-1000 default}; do
    tk=$token
    [ "$tk" = default ] && tk=""
    # The baseline: ocf:pacemaker:Stateful, the same faults.
    boot_cluster "$tk"
    cib_base
    cib_clone st-clone st ocf pacemaker Stateful ""
    for fault in ${RCT_CLUSTER_ST_FAULTS:-lose-state link-cut}; do
        trial st "$fault" "$token"
    done
    for n in $NODES; do kill_node "$n"; done
    kill -9 "$qnetd_pid" 2>/dev/null || true
    # rct-colo.
    boot_cluster "$tk"
    cib_base
    cib_clone colo-clone colo ocf rct rct-colo "$(colo_attrs)"
    if p=$(wait_pair colo); then
        compare_ram "$p" || { FAIL=1; log "token $token: the frozen guest's RAM differs"; }
        log "token $token: pair up, $p Promoted, RAM equal"
    else
        FAIL=1
    fi
    if [ "$STALL_S" != 0 ]; then
        stall_trial "$STALL_S" "$token"
        STALL_S=0
    fi
    for fault in ${RCT_CLUSTER_FAULTS:-kill-qemu kill-rctd link-cut kill-sec-rctd kill-sec-qemu}; do
        case $fault in
        kill-sec-*) unpromoted_trial "$fault" "$token" ;;
        *) trial colo "$fault" "$token" ;;
        esac
    done
    if p=$(wait_pair colo); then
        compare_ram "$p" || { FAIL=1; log "token $token: the frozen guest's RAM differs after the trials"; }
    else
        FAIL=1
    fi
    for n in $NODES; do kill_node "$n"; done
    kill -9 "$qnetd_pid" 2>/dev/null || true
done

if [ -n "$neighbour" ]; then
    kill "$neighbour" 2>/dev/null || true
    wait "$neighbour" 2>/dev/null || true
    log "the neighbour pair: $(grep -c . "$ST/neighbour.out") lines of output, the last: $(tail -n 1 "$ST/neighbour.out")"
fi
(IFS=,; echo "[${results[*]}]") | python3 -m json.tool > "$ST/cluster.json"
cat "$ST/cluster.json"
[ $FAIL = 0 ] && [ "${RCT_CLUSTER_KEEP:-0}" != 1 ] && keep=0
[ "$keep" = 0 ] || echo "cluster-test: logs kept in $ST"
[ -z "$STALL_LINE" ] || echo "$STALL_LINE"
echo "cluster: $T trials, $P promoted once, $D double primaries, failover max $S_MAX s, stateful baseline $B_MAX s, $U unpromoted faults, primary running again max $R_MAX s"
exit $FAIL
