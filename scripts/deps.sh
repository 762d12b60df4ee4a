#!/bin/bash
# Install the Debian packages rct needs to build and test, when they are missing.
# As root it runs apt-get; otherwise it names what is missing and fails.
#   scripts/deps.sh [build|test]     (test also brings the test-only packages)
set -euo pipefail

want=(cmake pkg-config gcc make libc6-dev libjansson-dev libucx-dev libibverbs-dev librdmacm-dev
      libmicrohttpd-dev libsystemd-dev libsodium-dev)
if [ "${1:-test}" = test ]; then
    want+=(libcriterion-dev clang-format python3 curl)
    # The stacks of a hung QEMU in the COLO tests (scripts/qemu/colo-pair.py).
    want+=(gdb)
    # rctctl bench --plots.
    want+=(gnuplot-nox)
    # promtool, the linter the metrics test runs on rctd's live page.
    want+=(prometheus)
    # The libFuzzer targets.
    want+=(clang libfuzzer-14-dev libclang-rt-14-dev)
    # The soft-RoCE VM: qemu, its initramfs tools, the rxe provider.
    want+=(qemu-system-x86 busybox-static kmod cpio xz-utils zstd iproute2 rdma-core
           ibverbs-providers ibverbs-utils rdmacm-utils perftest)
    # The Linux COLO guest (scripts/qemu/guest-linux): its disk image, its
    # static service.
    want+=(e2fsprogs libc6-dev)
    # The OCF agent and its cluster test: Pacemaker, Corosync, a quorum device,
    # ocf-tester, shellcheck.
    want+=(pacemaker pacemaker-cli-utils corosync corosync-qdevice corosync-qnetd
           resource-agents shellcheck)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
