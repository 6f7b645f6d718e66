#!/usr/bin/env bash
# The test suite's wall time in two source trees, run alternately (A, B, A, B) on this machine:
#   bash benchmarks/suite_time.sh BEFORE_TREE AFTER_TREE
# B runs twice: its whole suite, and the test files A has too (the files new in B left out, named
# below), so that like is compared with like. Each tree's own python -m pytest -n 2, as CI runs it.
set -euo pipefail
before=$1 after=$2
new_files=(--ignore=tests/test_kinds.py --ignore=tests/test_import_graph.py)
t() {
  local start; start=$(date +%s.%N)
  (cd "$1" && shift && python -m pytest -n 2 -q -p no:cacheprovider "$@" 2>&1 | tail -1)
  echo "wall $(echo "$(date +%s.%N) - $start" | bc) s"
}
for round in 1 2; do
  echo "== round $round: A ($before), full suite"; t "$before"
  echo "== round $round: B ($after), the test files A has"; t "$after" tests "${new_files[@]}"
done
echo "== B ($after), full suite (README and docs included)"; t "$after"
