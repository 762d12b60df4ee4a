#!/bin/bash
# Run a command against a real soft-RoCE device on a kernel without InfiniBand:
#   scripts/rxe/vm-run.sh CMD [ARGS...]
# boots a throw-away QEMU VM (Debian's kernel, busybox initramfs; TCG) whose
# root is this machine's / (read-only 9p under a tmpfs overlay), with rxe0 on
# dummy0 (10.77.0.1/24; no NIC, nothing leaves the VM) and rxe1/rxe2 on the two
# ends of a veth pair (rxv0 10.78.0.1, rxv1 10.78.0.2: a link a test can cut),
# runs CMD as root in the current directory with the current environment,
# streams its output, and exits with its status (255: the VM failed; 124: timed
# out).  Writes go to the host only under the directories in RCT_RXE_VM_RW
# (default: the current directory).
#
#   RCT_RXE_VM_SMP (nproc)  RCT_RXE_VM_MEM MiB (4096)  RCT_RXE_VM_TIMEOUT s (1800)
#   RCT_RXE_VM_MTU (1500: rxe active MTU 1024; 4200: 4096)
#   RCT_RXE_VM_CACHE (/var/tmp/rct-rxe-vm)  RCT_RXE_VM_VERBOSE=1: the guest console
set -u
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
case "${1:-}" in ""|-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; [ $# -ge 1 ]; exit $?;; esac
cache=${RCT_RXE_VM_CACHE:-/var/tmp/rct-rxe-vm}
export RCT_RXE_VM_CACHE=$cache
if [ ! -f "$cache/vmlinuz" ] || [ ! -f "$cache/initramfs.cpio.gz" ] ||
   [ "$here/vm-init.sh" -nt "$cache/initramfs.cpio.gz" ] ||
   [ "$here/vm-build.sh" -nt "$cache/initramfs.cpio.gz" ]; then
    "$here/vm-build.sh" || exit 255
fi
for t in qemu-system-x86_64; do
    command -v $t >/dev/null || { echo "rxe-vm: $t missing: apt-get install qemu-system-x86" >&2; exit 255; }
done

smp=${RCT_RXE_VM_SMP:-$(nproc)}
mem=${RCT_RXE_VM_MEM:-4096}
mtu=${RCT_RXE_VM_MTU:-1500}
timeout=${RCT_RXE_VM_TIMEOUT:-1800}
rw_dirs=${RCT_RXE_VM_RW-$PWD}

run=$(mktemp -d /tmp/rct-rxe-vm.XXXXXX) || exit 255
trap 'rm -rf "$run"' EXIT
rw_args=() rw_list="" i=0
for d in $rw_dirs; do
    d=$(readlink -f "$d")
    [ -d "$d" ] || { echo "rxe-vm: RCT_RXE_VM_RW: $d is not a directory" >&2; exit 255; }
    rw_args+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
    rw_list+=" $d"
    i=$((i + 1))
done
printf 'RUN_DIR=%q\nRW_DIRS=%q\nMTU=%q\n' "$run" "$rw_list" "$mtu" > "$run/config"
{
    echo '#!/bin/bash'
    while IFS= read -r -d '' kv; do
        n=${kv%%=*}
        [[ $n =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        case $n in PWD|OLDPWD|SHLVL|_|BASHOPTS|SHELLOPTS|BASH_ENV|ENV) continue ;; esac
        printf 'export %s=%q\n' "$n" "${kv#*=}"
    done < <(env -0)
    echo 'ulimit -l unlimited 2>/dev/null'
    printf 'cd %q || exit 254\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    echo
} > "$run/cmd.sh"

mkfifo "$run/out.in" "$run/out.out" "$run/err.in" "$run/err.out"
cat "$run/out.out" & cat_out=$!
cat "$run/err.out" >&2 & cat_err=$!
timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg,thread=multi,tb-size=512 -cpu max \
    -m "$mem" -smp "$smp" -nodefaults -no-user-config -display none -no-reboot -nic none \
    -kernel "$cache/vmlinuz" -initrd "$cache/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 rxevm.date=$(date +%s)" \
    -serial "file:$run/console.log" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$run,mount_tag=xfer,security_model=none" \
    "${rw_args[@]}" \
    -device virtio-serial-pci \
    -chardev "pipe,id=cout,path=$run/out" -device virtserialport,chardev=cout,name=rxevm.stdout \
    -chardev "pipe,id=cerr,path=$run/err" -device virtserialport,chardev=cerr,name=rxevm.stderr \
    </dev/null >"$run/qemu.log" 2>&1
qrc=$?
# Let the readers see EOF even if qemu never opened the fifos.
exec 8<>"$run/out.out" 9<>"$run/err.out"
exec 8>&- 9>&-
wait $cat_out $cat_err
[ "${RCT_RXE_VM_VERBOSE:-0}" = 1 ] && cat "$run/console.log" "$run/qemu.log" >&2
if [ -f "$run/rc" ]; then
    rc=$(cat "$run/rc")
    [ "$rc" = 255 ] && cat "$run/console.log" "$run/qemu.log" >&2
    exit "$rc"
fi
echo "rxe-vm: the VM ended without a result (qemu status $qrc)" >&2
tail -n 40 "$run/console.log" "$run/qemu.log" >&2
[ $qrc = 124 ] && exit 124
exit 255
