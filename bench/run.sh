#!/usr/bin/env bash
# Regenerates the peer comparison in one command:
#
#   results/new.txt        the go test -bench output (every run of every benchmark)
#   results/benchstat.txt  the benchstat tables that docs/benchmarks.md quotes
#   results/machine.txt    the machine and toolchain the numbers come from
#   ../docs/img/*.svg      the charts, drawn by cmd/chart
#   ../docs/benchmarks.md  its tables, machine and status line, between their
#                          <!-- begin NAME --> and <!-- end NAME --> markers (the
#                          prose around them is not touched: re-read it); a
#                          table with no markers there (bimodal) is only in
#                          results/benchstat.txt
#
# Usage: ./run.sh            the full run, about 16 minutes on 2 cores
#        QUICK=1 ./run.sh    a smoke run of a minute or two (one short pass; the
#                            numbers are only good for checking the pipeline)
#        COUNT=5 ./run.sh    fewer passes
#
# Each pass runs every workload once, so that passes interleave: a slow
# moment of the machine hits all contestants alike instead of one. The time
# per workload is chosen so that the full run stays within ~20 minutes on a
# 2-core machine (see the estimate printed first).
set -euo pipefail
cd "$(dirname "$0")"

BENCHSTAT='golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da'
COUNT=${COUNT:-10}

# workload  benchtime  estimated seconds per pass (18 contestants, 2 cores)
workloads=(
	"trivial          0.5s 32"
	"trivial-ordered  0.5s 5"
	"cpu1us           0.5s 20"
	"sleep1ms         20x  12"
	"stream           1x   9"
	"bimodal          10x  15"
)
if [ -n "${QUICK:-}" ]; then
	COUNT=1
	workloads=(
		"trivial          50ms 5"
		"trivial-ordered  50ms 1"
		"cpu1us           50ms 2"
		"sleep1ms         5x   4"
		"stream           1x   9"
		"bimodal          2x   4"
	)
fi

estimate=0
for w in "${workloads[@]}"; do
	read -r _ _ secs <<<"$w"
	estimate=$((estimate + secs))
done
estimate=$((estimate * COUNT))
printf 'run.sh: %d pass(es) of %d workloads, estimated %dm%02ds\n' \
	"$COUNT" "${#workloads[@]}" $((estimate / 60)) $((estimate % 60))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .

# The commit measured, so that every figure can be traced to its engine.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- ..; then commit="$commit (with uncommitted changes)"; fi

mkdir -p results
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $commit"
	echo "go: $(go version)"
	echo "kernel: $(uname -sr)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "cores: $(nproc)"
	echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
	if [ -n "${QUICK:-}" ]; then echo "mode: QUICK (preliminary: one short pass)"; fi
} >results/machine.txt
cat results/machine.txt

start=$SECONDS
: >"$tmp/new.txt"
for pass in $(seq "$COUNT"); do
	for w in "${workloads[@]}"; do
		read -r work benchtime _ <<<"$w"
		printf 'run.sh: pass %d/%d, work=%s (%ds so far)\n' "$pass" "$COUNT" "$work" $((SECONDS - start)) >&2
		# bimodal is BenchmarkBimodal's only workload, the others BenchmarkPeers'.
		if ! "$tmp/bench.test" -test.run '^$' -test.bench "^Benchmark(Peers|Bimodal)\$/^work=$work\$/" \
			-test.benchtime "$benchtime" -test.count 1 -test.benchmem >>"$tmp/new.txt"; then
			echo "run.sh: the benchmarks failed; their last lines:" >&2
			tail -40 "$tmp/new.txt" >&2
			exit 1
		fi
	done
done
mv "$tmp/new.txt" results/new.txt

# The benchstat tables: contestants in rows, one table per concurrency (a
# column per concurrency would make benchstat compare c=8 with c=2, which
# means nothing here). Each goes to results/benchstat.txt and, between its
# markers, into ../docs/benchmarks.md.
mkdir -p "$tmp/tables"
table() { # name, benchstat arguments...
	local name=$1
	shift
	go run "$BENCHSTAT" "$@" -row /impl -col /work results/new.txt 2>&1 |
		grep -Ev '^(goos|goarch|pkg|cpu): ' >"$tmp/tables/$name"
}
table trivial -filter '/work:trivial .unit:ns/item' -table /c
table trivial-allocs -filter '/work:trivial /c:8 .unit:(allocs/op OR B/op)'
table trivial-ordered -filter '/work:trivial-ordered .unit:ns/item'
table cpu1us -filter '/work:cpu1us .unit:ns/item' -table /c
table sleep1ms -filter '/work:sleep1ms .unit:wall/ideal' -table /c
table stream -filter '/work:stream .unit:(ns/item OR peak-heap-B OR peak-goroutines OR B/op)'
table bimodal -filter '/work:bimodal .unit:wall/ideal' -table /c
table bimodal-handover -filter '/work:bimodal .unit:p99-handover-ms' -table /c
for name in trivial trivial-allocs trivial-ordered cpu1us sleep1ms stream bimodal bimodal-handover; do
	echo "## $name"
	cat "$tmp/tables/$name"
	echo
done >results/benchstat.txt
cat results/benchstat.txt

if [ -n "${QUICK:-}" ]; then
	echo "**Preliminary.** The numbers below come from one short smoke pass
(\`QUICK=1 ./run.sh\`, $(date -u +%Y-%m-%d)): good for checking the pipeline, not
for conclusions. The full run is \`./run.sh\`." >"$tmp/tables/status"
else
	echo "The numbers below come from \`./run.sh\` ($COUNT interleaved passes,
$(date -u +%Y-%m-%d), commit $commit)." >"$tmp/tables/status"
fi
cp results/machine.txt "$tmp/tables/machine"

# Replace what stands between <!-- begin NAME --> and <!-- end NAME --> in
# the doc with the new table NAME, in a code block (status: as it is).
doc=../docs/benchmarks.md
if [ -f "$doc" ]; then
	awk -v dir="$tmp/tables" '
		/^<!-- begin [a-z0-9-]+ -->$/ {
			print
			name = $3
			file = dir "/" name
			fence = (name != "status")
			if (fence) print "```"
			while ((getline line < file) > 0) print line
			close(file)
			if (fence) print "```"
			skip = 1
			next
		}
		/^<!-- end [a-z0-9-]+ -->$/ { skip = 0 }
		!skip { print }
	' "$doc" >"$tmp/doc.md"
	mv "$tmp/doc.md" "$doc"
fi

go run ./cmd/chart -out ../docs/img results/new.txt
printf 'run.sh: done in %dm%02ds\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
