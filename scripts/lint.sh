#!/usr/bin/env bash
# Checks the kernel's layering (scripts/check-layering.sh: src/kernel reaches the host only
# through sim/host.hpp), checks formatting (clang-format, .clang-format) and runs clang-tidy
# (.clang-tidy) over include/, src/ and sim/, and checks that every relative link in the
# Markdown files points to a file that exists (and, for a link with #anchor into a .md file, to
# one of its headings). Exits non-zero on any layering violation, formatting difference,
# clang-tidy finding or broken link.
# Arguments are passed to clang-tidy (e.g. --fix).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

helsim_install_packages "${HELSIM_PACKAGES[@]}" clang-format clang-tidy python3
# clang-tidy needs build/compile_commands.json; configuring again is cheap and keeps it current.
helsim_configure build -DHELSIM_TESTS=ON -DHELSIM_BENCHMARKS=ON -DHELSIM_EXAMPLES=ON >/dev/null

mapfile -t sources < <(find include src sim -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | sort)
mapfile -t units < <(printf '%s\n' "${sources[@]}" | grep '\.cpp$')

status=0
"$(dirname "${BASH_SOURCE[0]}")/check-layering.sh" || status=1

echo "clang-format: ${#sources[@]} files"
clang-format --dry-run --Werror "${sources[@]}" || status=1

mapfile -t markdown < <(git ls-files '*.md' 2>/dev/null ||
	find . -name '*.md' -not -path './build*' -not -path './install*' | sort)
echo "links: ${#markdown[@]} Markdown files"
python3 - "${markdown[@]}" <<'PY' || status=1
# [text](target) outside code: target must exist relative to the file; a #anchor into a .md
# file must match one of its headings as GitHub makes anchors (lower case, punctuation
# dropped, spaces to hyphens, -1, -2 ... for repeats). http(s) and mailto links are not checked.
import os, re, sys

def lines_outside_code(path):
    fenced = False
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith('```'):
                fenced = not fenced
            elif not fenced:
                yield number, re.sub(r'`[^`]*`', '', line) if not line.startswith('#') else line

def anchors(path, cache={}):
    if path not in cache:
        seen, found = {}, set()
        for _, line in lines_outside_code(path):
            m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', line)
            if m:
                slug = re.sub(r'[^\w\- ]', '', m.group(1).strip().lower()).replace(' ', '-')
                n = seen.get(slug, 0)
                seen[slug] = n + 1
                found.add(slug if n == 0 else f'{slug}-{n}')
        cache[path] = found
    return cache[path]

broken = 0
for path in sys.argv[1:]:
    for number, line in lines_outside_code(path):
        for target in re.findall(r'\]\(([^)\s]+)\)', line):
            if re.match(r'[a-z]+:', target):
                continue
            file, _, anchor = target.partition('#')
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            if not os.path.exists(resolved):
                print(f'{path}:{number}: {target}: no such file')
                broken += 1
            elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
                print(f'{path}:{number}: {target}: no such heading')
                broken += 1
sys.exit(1 if broken else 0)
PY
echo "clang-tidy: ${#units[@]} translation units"
clang-tidy -p build --quiet --warnings-as-errors='*' "$@" "${units[@]}" || status=1
exit "$status"
