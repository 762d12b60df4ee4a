#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A test cluster node's namespaces (scripts/cluster-test.sh), after
# ../shared/pacemaker-ns: run as
#   ip netns exec NS unshare --mount --uts --ipc --propagation private -- node-init.sh NODE DIR
# it gives the node private /etc/corosync, /var/lib/{corosync,pacemaker},
# /var/log/{pacemaker,corosync}, a fresh tmpfs /run and /dev/shm and its own
# hostname, then parks as the namespaces' holder.
set -e
node=$1
s=$2/$node
mount --make-rprivate /
mount --bind "$s/etc-corosync" /etc/corosync
mount --bind "$s/var-lib-corosync" /var/lib/corosync
mount --bind "$s/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$s/var-log-pacemaker" /var/log/pacemaker
mount --bind "$s/var-log-corosync" /var/log/corosync
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/crm /run/resource-agents /run/lock /run/rctd /run/corosync-qdevice
chown hacluster:haclient /run/crm
chmod 0750 /run/crm
chmod 1755 /run/resource-agents
chmod 1777 /run/lock
ln -s /dev/shm /run/shm
mount -t tmpfs -o mode=1777,size=512m tmpfs /dev/shm
hostname "$node"
echo $$ > "$s/holder.pid"
exec sleep infinity
