#!/bin/sh
# expect_exit.sh CODE COMMAND... : runs COMMAND, passes its output through,
# and succeeds only if it exits with CODE. A failing command must end its
# stderr with exactly one "scxkit: ..." line.
want=$1
shift
err=$(mktemp)
"$@" 2>"$err"
got=$?
cat "$err" >&2
last=$(tail -n 1 "$err")
rm -f "$err"
if [ "$got" -ne "$want" ]; then
  echo "expected exit $want, got $got" >&2
  exit 1
fi
if [ "$want" -ne 0 ]; then
  case "$last" in
    scxkit:\ *) ;;
    *) echo "the last line on stderr is not one 'scxkit: ...' line: $last" >&2; exit 1 ;;
  esac
fi
exit 0
