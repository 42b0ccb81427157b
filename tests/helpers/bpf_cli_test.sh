#!/bin/sh
# bpf_cli_test.sh MODE SCXKIT HOLDER: runs bpf_arena_holder, then checks what
# `scxkit arena show` (MODE show) or `scxkit prog stderr|stdout` (MODE
# streams) say about the arena and programs it holds. Exit 77 = skipped.
# Without a bpffs at /sys/fs/bpf the test runs in a private mount namespace
# with its own, which disappears with it.
set -u
mode=$1 scxkit=$2 holder=$3
if [ "$(id -u)" -ne 0 ]; then echo "SKIPPED: loading BPF programs needs root"; exit 77; fi
# /proc/mounts, not stat -f: busybox's stat (the VM guest's) has no name for bpffs.
if ! grep -qs '^[^ ]* /sys/fs/bpf bpf ' /proc/mounts; then
  if [ -z "${SCXKIT_IN_MOUNT_NS:-}" ]; then
    SCXKIT_IN_MOUNT_NS=1 exec unshare --mount --propagation private "$0" "$@"
  fi
  mount -t bpf bpf /sys/fs/bpf || { echo "SKIPPED: cannot mount a bpffs"; exit 77; }
fi

tmp=$(mktemp -d) || exit 1
# bpffs refuses names with a dot.
pins=$(mktemp -d /sys/fs/bpf/scxkit-test-XXXXXX) || { rm -rf "$tmp"; exit 1; }
mkfifo "$tmp/in"
"$holder" "$pins" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
holder_pid=$!
exec 3>"$tmp/in"
cleanup() {
  exec 3>&-  # the holder's stdin closes: it unpins and exits
  i=0
  while kill -0 "$holder_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$holder_pid" 2>/dev/null
  wait "$holder_pid" 2>/dev/null
  rm -f "$pins/arena"
  rmdir "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$tmp/err"; exit 1; }

i=0
until [ -s "$tmp/out" ]; do
  if ! kill -0 "$holder_pid" 2>/dev/null; then
    wait "$holder_pid"
    [ $? -eq 77 ] && { echo "SKIPPED: $(cat "$tmp/err")"; exit 77; }
    fail "bpf_arena_holder exited early"
  fi
  [ $i -lt 300 ] || fail "bpf_arena_holder printed nothing in 30 s"
  sleep 0.1
  i=$((i + 1))
done
line=$(head -n 1 "$tmp/out")
echo "holder: $line"
field() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
map_id=$(field map_id)
list_build_id=$(field list_build_id)
say_id=$(field say_id)

case $mode in
show)
  for how in "--map-id $map_id" "--pin $pins/arena"; do
    # shellcheck disable=SC2086
    out=$("$scxkit" arena show $how) || fail "scxkit arena show $how exited $?"
    echo "$out"
    echo "$out" | grep -q "^arena map $map_id " || fail "wrong map in: $out"
    echo "$out" | grep -q "size          64 pages" || fail "size"
    echo "$out" | grep -q "flags         0x400 mmapable" || fail "flags"
    # list_build: 2 pages, page_tag: 3 pages, the user-view touch: page 40.
    echo "$out" | grep -q "allocated     6 of 64 pages (24 KiB)" || fail "allocated pages"
    echo "$out" | grep -q "used pages    2 run(s): 0-4 40" || fail "used ranges"
  done
  # Shown twice, still 6 pages: looking allocated nothing.
  "$scxkit" arena show --map-id "$map_id" | grep -q "allocated     6 of 64" || fail "show changed the arena"
  err=$("$scxkit" arena show --map-id "$list_build_id" 2>&1) && fail "a program id was accepted"
  echo "$err" | grep -q "^scxkit: " || fail "no one-line error: $err"
  ;;
streams)
  out=$("$scxkit" prog stdout --id "$say_id") || fail "scxkit prog stdout exited $?"
  err=$("$scxkit" prog stderr --id "$list_build_id") || fail "scxkit prog stderr exited $?"
  if [ "$(field printed)" != yes ]; then
    [ -z "$out$err" ] || fail "streams hold text although printing failed"
    echo "SKIPPED: this kernel could not allocate memory for BPF stream messages (the stream printing kfunc: -ENOMEM); reading empty streams works"
    exit 77
  fi
  [ "$out" = "hello from BPF stdout" ] || fail "stdout was: $out"
  echo "$err" | grep -q "^list_build: 300 nodes in 2 pages" || fail "stderr was: $err"
  again=$("$scxkit" prog stderr --id "$list_build_id")
  [ -z "$again" ] || fail "reading did not consume the stream: $again"
  ;;
*) fail "unknown mode $mode" ;;
esac
echo PASS
