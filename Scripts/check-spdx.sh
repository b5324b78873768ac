#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file in git (*.swift, *.c, *.h, *.cpp, *.py, *.sh, Makefile, .ci/run, the manual
# pages) carries `SPDX-License-Identifier: Apache-2.0` (the LICENSE) in its first three lines:
# after a shebang, or after `// swift-tools-version` in a Package.swift, which must stay first.
# Generated files get it from their generator (Scripts/gen-header.sh, Scripts/gen-man.sh). Test
# data (JSON, corpora, sysfs trees) is not source and is not checked. Exits 1 naming each file
# without it.
#
#   Scripts/check-spdx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0 n=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2\.0'; then
    echo "$f: no 'SPDX-License-Identifier: Apache-2.0' in its first three lines" >&2
    bad=$((bad + 1))
  fi
  case "$f" in
    */Package.swift|Package.swift)
      head -n 1 "$f" | grep -q '^// swift-tools-version' || { echo "$f: '// swift-tools-version' is not the first line" >&2; bad=$((bad + 1)); } ;;
  esac
done < <(git ls-files | grep -E '\.(swift|c|h|cpp|py|sh)$|(^|/)Makefile$|^\.ci/run$|^man/man[0-9]/' | grep -vE '(^|/)(corpus|sysfs[^/]*)/')
echo "spdx: $n files checked, $bad without the line"
[ "$bad" = 0 ]
