# Shared by the reliability scripts: where the runner and the data are, and a
# small experiment that trains in seconds on real CIFAR-10 images.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
RUNNER=${RUNNER:-$source_dir/build/runner}
RUNNER=$(cd "$(dirname "$RUNNER")" && pwd)/$(basename "$RUNNER")
CIFAR10_ROOT=${CIFAR10_ROOT:-$(cd "$source_dir/.." && pwd)/shared/data/cifar-10-batches-bin}
export CIFAR10_ROOT
[ -x "$RUNNER" ] || { echo "$0: no runner at $RUNNER (make build first)" >&2; exit 2; }
[ -d "$CIFAR10_ROOT" ] || { echo "$0: no CIFAR-10 at $CIFAR10_ROOT" >&2; exit 2; }
base_experiment=$source_dir/experiments/session8/bn.yaml
small_sets=(--set data.limit.train=600 --set data.limit.test=200 --set train.epochs=3 --set train.batch_size=64
            --set train.threads=1)

# sql DB QUERY: one value, or fail loudly.
sql() { sqlite3 -cmd ".timeout 10000" "$1" "$2"; }

# Random real number in [0, $1) seconds, from $RANDOM (seeded by the caller).
random_delay() { awk -v max="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", max * r / 32768 }'; }

fail() { echo "FAIL: $*" >&2; exit 1; }
