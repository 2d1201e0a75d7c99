#!/usr/bin/env bash
# Before/after: the benchmarks of an earlier revision and of this tree, alternated in one run.
#
#   benchmarks/compare.sh REV [ROUNDS] [BENCH...]      e.g. benchmarks/compare.sh 63c2aa1 2 clicks conversions
#
# REV is checked out into a worktree (under $TMPDIR) with a virtual environment of its own; each round runs
# every benchmark on REV, then on this tree, so slow and fast moments of a shared machine fall on both. The
# room benchmark runs once per tree per round, at the sizes in ROOM_COUNTS (default 5000,7250). Outputs go to
# benchmarks/results/compare-REV/; the summary lines are printed as they come.
set -euo pipefail

rev=${1:?usage: benchmarks/compare.sh REV [ROUNDS] [BENCH...]}
rounds=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
benches=("${@:-clicks conversions verify room}")
read -r -a benches <<< "${benches[*]}"
here=$(cd "$(dirname "$0")/.." && pwd)
before=${TMPDIR:-/tmp}/liveloop-compare-$rev
out=$here/benchmarks/results/compare-$rev
mkdir -p "$out"

if [ ! -d "$before" ]; then
  git -C "$here" worktree add --detach "$before" "$rev" >/dev/null
fi
if [ ! -x "$before/.venv/bin/python" ]; then
  echo "installing $rev into $before/.venv …"
  python3 -m venv "$before/.venv"
  (cd "$before" && .venv/bin/pip install --quiet -c requirements.lock -e '.[dev,bench]')
fi

run() {  # run TREE NAME BENCH ROUND
  local tree=$1 name=$2 bench=$3 round=$4 file
  file=$out/$bench-$name-$round.txt
  local args=()
  [ "$bench" = room ] && args=(--counts "${ROOM_COUNTS:-5000,7250}")
  echo "== $bench, $name, round $round ($(date +%T))"
  (cd "$tree" && .venv/bin/python "benchmarks/bench_$bench.py" "${args[@]}" >"$file" 2>&1) || echo "   failed: see $file"
  grep -E "^(clicks|conversions|ledger verify|room:)|per conversion|viewers:" "$file" | sed 's/^/   /' || true
}

for round in $(seq 1 "$rounds"); do
  for bench in "${benches[@]}"; do
    run "$before" "$rev" "$bench" "$round"
    run "$here" "this-tree" "$bench" "$round"
  done
done
echo "outputs: $out"
