#!/bin/bash
# Soft-RoCE on a host whose kernel has rdma_rxe: load it and put an rxe device
# on a network interface.  (On kernels without InfiniBand, as on the project's
# machines, use vm-run.sh instead: it boots a throw-away VM that has one.)
#   scripts/rxe/host-setup.sh [NETDEV] [RXE_NAME]     (defaults: the interface of
#                                                      the default route, rxe0)
#   scripts/rxe/host-setup.sh --remove [RXE_NAME]
set -euo pipefail
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
if [ "$(id -u)" != 0 ]; then echo "rxe: must run as root (modprobe, rdma link)" >&2; exit 1; fi
command -v rdma >/dev/null || { echo "rxe: 'rdma' not found: apt-get install iproute2" >&2; exit 1; }

if [ "${1:-}" = --remove ]; then
    rdma link delete "${2:-rxe0}"
    exit 0
fi
dev=${1:-$(ip route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i+1); exit}}')}
name=${2:-rxe0}
[ -n "$dev" ] || { echo "rxe: no network interface given and no default route" >&2; exit 1; }
if ! modprobe rdma_rxe 2>/dev/null; then
    echo "rxe: this kernel ($(uname -r)) has no rdma_rxe module; use scripts/rxe/vm-run.sh" >&2
    exit 1
fi
if rdma link show "$name/1" >/dev/null 2>&1; then
    echo "rxe: $name already exists"
else
    rdma link add "$name" type rxe netdev "$dev"
fi
rdma link show "$name/1"
