#!/bin/bash
# librct-client carries no transport: what it needs at run time is libc (and
# the dynamic loader; ASan's and UBSan's runtimes in a sanitizer build), never
# UCX, ibverbs, rdmacm or libsodium; and a client
# built from rct/rct_client.h alone runs.  Usage: client_needs.sh LIB CLIENT
set -euo pipefail
lib=$1 client=$2
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "client-needs: $(basename "$lib") needs: $needed"
for n in $needed; do
    case $n in
        libc.so.* | ld-linux*.so.*) ;;
        libasan.so.* | libubsan.so.*) ;; # the sanitizer runtimes of an RCT_SANITIZE build
        *) echo "client-needs: FAIL: $n" >&2; exit 1 ;;
    esac
done
"$client"
echo "client-needs: ok"
