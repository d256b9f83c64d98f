#!/usr/bin/env bash
# pool-rounds.sh [rounds]: BenchmarkPool's three runs=16 cases, each in its
# own process, the order rotating every round, so that neither the
# machine's drift nor the order of sub-benchmarks within a process favours
# one case. Prints benchmark lines for benchstat:
#
#   docs/bench/pool-rounds.sh 100 | tee docs/bench/pool-rounds.txt
#   benchstat -col /limit docs/bench/pool-rounds.txt
set -euo pipefail
rounds=${1:-100}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/fofi.test" .
cases=(each-c1 each-c8 pool8)
for r in $(seq "$rounds"); do
  for k in 0 1 2; do
    c=${cases[$(((k + r) % 3))]}
    "$dir/fofi.test" -test.run '^$' -test.bench "^BenchmarkPool\$/^work=cpu1us\$/^runs=16\$/^limit=$c\$" -test.benchmem -test.count 1 |
      grep -E '^(Benchmark|goos|goarch|pkg|cpu)' | { [ "$r$k" = 10 ] && cat || grep '^Benchmark'; }
  done
done
