#!/usr/bin/env bash
# Mutation testing of sktransfer's fast, pure modules with mutmut 3.
#
#   scripts/mutation.sh [REF]
#
# Mutates sktransfer/_freeze.py, sktransfer/_validation.py and
# sktransfer/_archive.py (MUTATE below) and runs, for every mutant, the
# tests of TESTS that execute the mutated function (mutmut records which
# test runs which function first). A mutant is killed when one of them
# fails. Prints the survivors (with their diffs) and the score per module.
#
# REF: a commit to measure (e.g. the branch's starting point) instead of
# the working tree. Tests of TESTS that REF does not have are left out, so
# the same command measures before and after a change of the tests.
#
# The run happens in a scratch copy (MUTATION_WORKDIR, default a new temp
# directory): the repository, its pyproject.toml and the shared virtual
# environment are left alone. mutmut is installed once with
# `pip install --target` into MUTMUT_LIB and appended to sys.path (so the
# project's own pytest wins). Uses the python on PATH (activate .venv).
#
# 474 mutants; on two busy cores about 7 minutes with this branch's tests
# (15 at its starting point, where more mutants survive and run every test).
# Survivors are printed with their diff: each is either a test to write or
# an equivalent mutant (e.g. `accept_sparse=True` where sparse X is refused
# before). MUTATE and TESTS can be overridden with space-separated lists in
# the environment, e.g.
#   MUTATE="sktransfer/_freeze.py" TESTS="tests/test_freeze.py" scripts/mutation.sh
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
REF=${1:-}
PYTHON=${PYTHON:-python}
MUTMUT_VERSION=3.8.1
MUTMUT_LIB=${MUTMUT_LIB:-$HOME/.cache/sktransfer-mutmut-$MUTMUT_VERSION}
WORK=${MUTATION_WORKDIR:-$(mktemp -d -t sktransfer-mutation.XXXXXX)}

read -r -a MUTATE <<< "${MUTATE:-sktransfer/_freeze.py sktransfer/_validation.py sktransfer/_archive.py}"
# Fast tests only: unit tests of these modules, and the two reliability
# tests that save and load an estimator without the module-wide fixtures.
read -r -a TESTS <<< "${TESTS:-tests/test_freeze.py tests/test_units.py \
tests/test_reliability.py::test_saved_estimator_with_lambda_is_refused_by_load \
tests/test_reliability.py::test_estimator_with_custom_layer_loads_with_custom_objects \
tests/test_freeze_messages.py tests/test_validation_messages.py tests/test_archive.py}"

if ! "$PYTHON" -c "import sys; sys.path.append('$MUTMUT_LIB'); import mutmut" 2>/dev/null; then
    echo "installing mutmut $MUTMUT_VERSION into $MUTMUT_LIB"
    "$PYTHON" -m pip install --quiet --target "$MUTMUT_LIB" "mutmut==$MUTMUT_VERSION"
fi

# the files to test: the working tree (tracked and untracked, not ignored)
# or the tree of REF
mkdir -p "$WORK"
if [ -n "$REF" ]; then
    git -C "$ROOT" archive "$REF" | tar -x -C "$WORK"
else
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
        | (cd "$ROOT" && xargs -0 tar -c --ignore-failed-read 2>/dev/null) \
        | tar -x -C "$WORK"
fi
cd "$WORK"
rm -rf mutants

selected=()
for test in "${TESTS[@]}"; do
    if [ -e "${test%%::*}" ]; then selected+=("$test"); else echo "not in this tree: $test"; fi
done

toml_list() { "$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
cat >> pyproject.toml <<TOML

[tool.mutmut]
source_paths = ["sktransfer"]
# TensorFlow is not fork-safe once a test has trained a network: fork the
# mutants from a server that has only imported and collected the tests
process_isolation = "forkserver"
only_mutate = $(toml_list "${MUTATE[@]}")
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]
pytest_add_cli_args_test_selection = $(toml_list "${selected[@]}")
TOML

echo "mutating ${MUTATE[*]}"
echo "tests: ${selected[*]}"
echo "in $WORK"
mutmut() {
    env -u PYTHONPATH TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" -c \
        "import sys; sys.path.append('$MUTMUT_LIB'); sys.argv[0] = 'mutmut'; \
from mutmut.__main__ import cli; cli()" "$@"
}
start=$(date +%s)
mutmut run > mutmut-run.log 2>&1 || { tail -50 mutmut-run.log; exit 1; }
echo "mutmut run took $(( $(date +%s) - start )) s"

mutmut results --all true > results.txt
echo
echo "survivors:"
grep -v ": killed$" results.txt | while read -r line; do
    name=${line%%:*}
    echo "--- $line"
    mutmut show "$name" | grep '^[-+] ' || true
done
echo
"$PYTHON" - "${MUTATE[@]}" <<'PY'
import collections, sys
counts = collections.defaultdict(collections.Counter)
for line in open("results.txt"):
    name, status = (part.strip() for part in line.rsplit(":", 1))
    module = name.split(".x_")[0].split(".xǁ")[0]
    counts[module][status] += 1
print(f"{'module':<28}{'mutants':>8}{'killed':>8}  score  other")
total = collections.Counter()
for module in sorted(counts):
    c = counts[module]
    n, killed = sum(c.values()), c["killed"] + c["timeout"]
    total += c
    other = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("killed",))
    print(f"{module:<28}{n:>8}{killed:>8}  {100 * killed / n:5.1f}%  {other}")
n, killed = sum(total.values()), total["killed"] + total["timeout"]
print(f"{'all':<28}{n:>8}{killed:>8}  {100 * killed / n:5.1f}%")
PY
