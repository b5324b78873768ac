#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every hand-written source file git tracks carries `SPDX-License-Identifier: Apache-2.0` in its
# first three lines (LICENSE), and so does every manual page (Scripts/gen-man.sh writes it into
# man3); test data (JSON, corpora, sysfs trees) does not.
# Exits 1 naming each file without it.
#
#   Scripts/check-spdx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
while IFS= read -r f; do
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' || { echo "no SPDX line: $f"; missing=$((missing + 1)); }
done < <(git ls-files '*.swift' '*.c' '*.h' '*.cpp' '*.py' '*.sh' 'Makefile' '*/Makefile' .ci/run debian/rules 'man/*' |
         grep -v '^Fuzz/corpus/\|^examples/topologies/')
echo "SPDX: $(git ls-files '*.swift' '*.c' '*.h' '*.cpp' '*.py' '*.sh' 'Makefile' '*/Makefile' .ci/run debian/rules 'man/*' | grep -v '^Fuzz/corpus/\|^examples/topologies/' | wc -l) files checked, $missing without the line"
[ "$missing" = 0 ]
