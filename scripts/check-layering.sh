#!/usr/bin/env bash
# Checks the kernel's layering (docs/architecture.md, "Layers"): src/kernel reaches the host only
# through the host interface, sim/host.hpp, and sits below the host API, <helsim/machine.hpp>.
# Fails, naming file and line, if a file under src/kernel
#   - includes a sim/ header other than sim/host.hpp,
#   - includes a public header above the kernel (machine.hpp, hosted.hpp, testing.hpp,
#     benchmark.hpp, dispatcher.hpp, ipc.hpp, posix*.hpp), or a public header that includes one
#     of them, directly or through other public headers (extension.hpp, which includes
#     machine.hpp: the kernel includes extension_kernel.hpp),
#   - includes a host system header (<sys/...>, <linux/...>, <unistd.h>, <pthread.h>,
#     <sched.h>, <signal.h>, <thread>, ...),
#   - calls a host function directly (mmap, futex, sched_yield, gettid, pthread_*, clock_gettime,
#     nanosleep, std::this_thread, a std::chrono clock, ...), or registers a fault window other
#     than through sim::host_operations(),
#   - uses the fault-safe routines (sim::safe_copy, sim::safe_load_u32) outside the kernel's
#     user-memory access (memory/usercopy.cpp, memory/bounce_copy.cpp, threads/futex.cpp).
# Comments and string literals are not checked.
#
# Usage: scripts/check-layering.sh [ROOT]      check ROOT/src/kernel against ROOT/include/helsim
#                                               (default: this checkout)
#        scripts/check-layering.sh --self-test  check that each kind of violation, injected into
#                                               a copy of src/kernel, fails the check
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

check() {
	python3 - "$1/src/kernel" <<'PY'
import os, re, sys

kernel = sys.argv[1]
public = os.path.join(os.path.dirname(os.path.dirname(kernel)), 'include', 'helsim')
HOST_INTERFACE = 'sim/host.hpp'
ABOVE_KERNEL = {'machine.hpp', 'hosted.hpp', 'testing.hpp', 'benchmark.hpp', 'dispatcher.hpp',
                'ipc.hpp', 'posix.hpp', 'posix_device.hpp'}
SYSTEM_HEADER = re.compile(r'^(sys|linux|asm|bits)/|^(unistd|pthread|sched|signal|fcntl|time|'
                           r'semaphore|dlfcn|ucontext|setjmp)\.h$|^(thread|csignal|ctime)$')
HOST_CALLS = (r'mmap|munmap|mremap|mprotect|madvise|msync|mlock|munlock|memfd_create|syscall|'
              r'futex|sched_yield|sched_\w+|gettid|getpid|getrandom|clock_gettime|gettimeofday|'
              r'clock_nanosleep|nanosleep|usleep|sigaction|sigprocmask|tgkill|'
              r'pthread_\w+')
# An unqualified or ::-qualified call; a member (x.close(), p->write()) or a name in another
# namespace (kernel::write) is not a host call.
HOST_CALL = re.compile(r'(?:^|[^\w.>:]|[^\w:]::)(' + HOST_CALLS + r')\s*\(')
STD_HOST = re.compile(r'std::(this_thread|thread|jthread|chrono::\w+_clock|random_device)\b')
DIRECT_WINDOW = re.compile(r'\bsim::(register_window|unregister_window)\b')
FAULT_SAFE = re.compile(r'\bsim::(safe_copy|safe_load_u32)\b')
FAULT_SAFE_USERS = {'memory/usercopy.cpp', 'memory/bounce_copy.cpp', 'threads/futex.cpp'}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

def code_lines(path):
    """Lines with comments and string/char literals blanked (include lines kept whole)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    out, i, n = [], 0, len(text)
    state = None
    while i < n:
        c = text[i]
        if state is None:
            if text.startswith('//', i):
                j = text.find('\n', i)
                i = n if j < 0 else j
                continue
            if text.startswith('/*', i):
                j = text.find('*/', i + 2)
                end = n if j < 0 else j + 2
                out.append(re.sub(r'[^\n]', ' ', text[i:end]))
                i = end
                continue
            line_start = text.rfind('\n', 0, i) + 1
            if c in '"\'' and not text[line_start:i].lstrip().startswith('#'):
                # A raw string R"(...)" is skipped whole.
                if c == '"' and i > 0 and text[i - 1] == 'R':
                    m = re.match(r'"([^(\s]*)\(', text[i:])
                    if m:
                        end = text.find(')' + m.group(1) + '"', i)
                        end = n if end < 0 else end + len(m.group(1)) + 2
                        out.append(re.sub(r'[^\n]', ' ', text[i:end]))
                        i = end
                        continue
                state = c
                out.append(c)
                i += 1
                continue
            out.append(c)
            i += 1
        else:
            if c == '\\':
                out.append('  ')
                i += 2
                continue
            if c == state:
                state = None
                out.append(c)
            elif c == '\n':
                state = None
                out.append(c)
            else:
                out.append(' ')
            i += 1
    return ''.join(out).split('\n')

def public_includes(name):
    """The <helsim/...> headers the public header `name` includes (code lines only)."""
    path = os.path.join(public, name)
    if not os.path.isfile(path):
        return []
    found = []
    for line in code_lines(path):
        m = INCLUDE.match(line)
        if m and m.group(2).startswith('helsim/'):
            found.append(m.group(2)[len('helsim/'):])
    return found

# A public header is above the kernel if it is one of ABOVE_KERNEL or includes one, however
# deep: `through[h]` is the header h includes that makes it so.
through = {}
if os.path.isdir(public):
    headers = sorted(n for n in os.listdir(public) if n.endswith(('.hpp', '.h')))
    changed = True
    while changed:
        changed = False
        for h in headers:
            if h in ABOVE_KERNEL or h in through:
                continue
            for inc in public_includes(h):
                if inc in ABOVE_KERNEL or inc in through:
                    through[h] = inc
                    changed = True
                    break

def chain(header):
    """'a.hpp includes <helsim/b.hpp>, which includes <helsim/machine.hpp>'."""
    links = []
    while header in through:
        header = through[header]
        links.append(f'<helsim/{header}>')
    return ', which includes '.join(links)

problems = []
files = 0
for root, _, names in os.walk(kernel):
    for name in sorted(names):
        if not name.endswith(('.cpp', '.hpp', '.h')):
            continue
        path = os.path.join(root, name)
        rel = os.path.relpath(path, kernel)
        files += 1
        for number, line in enumerate(code_lines(path), 1):
            where = f'src/kernel/{rel}:{number}'
            m = INCLUDE.match(line)
            if m:
                kind, header = m.groups()
                if header.startswith('sim/') and header != HOST_INTERFACE:
                    problems.append(f'{where}: includes {header}; the kernel includes only '
                                    f'{HOST_INTERFACE} from sim/')
                elif header.startswith('helsim/') and header[len('helsim/'):] in ABOVE_KERNEL:
                    problems.append(f'{where}: includes <{header}>, a layer above the kernel '
                                    '(configuration types: <helsim/machine_config.hpp>)')
                elif header.startswith('helsim/') and header[len('helsim/'):] in through:
                    problems.append(f'{where}: includes <{header}>, which includes '
                                    f'{chain(header[len("helsim/"):])}, a layer above the kernel '
                                    '(the extension API: <helsim/extension_kernel.hpp>)')
                elif kind == '<' and SYSTEM_HEADER.search(header):
                    problems.append(f'{where}: includes <{header}>; the kernel reaches the host '
                                    f'through {HOST_INTERFACE}')
                continue
            for m in HOST_CALL.finditer(line):
                problems.append(f'{where}: calls {m.group(1)}() directly; use {HOST_INTERFACE} '
                                '(Host, host_operations())')
            for m in STD_HOST.finditer(line):
                problems.append(f'{where}: uses std::{m.group(1)}, a host facility; use '
                                f'{HOST_INTERFACE} (Host::now, host_operations())')
            for m in DIRECT_WINDOW.finditer(line):
                problems.append(f'{where}: calls sim::{m.group(1)} directly; use '
                                f'sim::host_operations().{m.group(1)}')
            if rel not in FAULT_SAFE_USERS:
                for m in FAULT_SAFE.finditer(line):
                    problems.append(f'{where}: uses sim::{m.group(1)} outside the user-memory '
                                    'access (copy through kernel/memory/usercopy.hpp)')

for p in problems:
    print(p)
if not files:
    print(f'{kernel}: no kernel sources found')
    sys.exit(1)
if problems:
    print(f'check-layering: {len(problems)} layering violation(s) in src/kernel '
          '(docs/architecture.md, "Layers")')
    sys.exit(1)
print(f'check-layering: {files} files under src/kernel reach the host only through '
      'sim/host.hpp and include nothing above the kernel')
PY
}

self_test() {
	local scratch status=0
	scratch="$(mktemp -d)"
	trap 'rm -rf "$scratch"' RETURN
	# Each case: a file under src/kernel and a line appended to it.
	local cases=(
		'memory/space.cpp|void injected() { mmap(nullptr, 4096, 0, 0, -1, 0); }'
		'core/spinlock.hpp|inline void injected() { ::sched_yield(); }'
		'core/universe.cpp|void injected() { (void)syscall(202, nullptr); }'
		'threads/thread.cpp|void injected() { (void)pthread_self(); }'
		'threads/clock.cpp|void injected() { std::this_thread::yield(); }'
		'threads/clock.cpp|auto injected() { return std::chrono::steady_clock::now(); }'
		'memory/virtual_window.cpp|void injected() { sim::register_window(0, 1, nullptr); }'
		'ipc/stream.cpp|std::size_t injected(void *d, const void *s) { return sim::safe_copy(d, s, 1); }'
		'core/kernel.cpp|#include "sim/fiber.hpp"'
		'core/kernel.hpp|#include <helsim/machine.hpp>'
		'core/kernel.hpp|#include <helsim/extension.hpp>'
		'ipc/stream_extension.cpp|#include <helsim/testing.hpp>'
		'memory/space.cpp|#include <sys/mman.h>'
	)
	local clean="$scratch/clean"
	mkdir -p "$clean/src" "$clean/include"
	cp -r "$here/../src/kernel" "$clean/src/"
	cp -r "$here/../include/helsim" "$clean/include/"
	if ! check "$clean" >/dev/null; then
		echo "self-test: the unchanged tree fails the check:"
		check "$clean" || true
		return 1
	fi
	# Neither comments nor strings are code.
	local quiet="$scratch/quiet"
	cp -r "$clean" "$quiet"
	printf '%s\n' '// mmap(nullptr, 1) and sched_yield() in a comment' \
		'/* #include <sys/mman.h> */' \
		'inline const char *injected = "futex(2) and pthread_create(3)";' \
		>>"$quiet/src/kernel/core/spinlock.hpp"
	if ! check "$quiet" >/dev/null; then
		echo "self-test: a comment or a string literal counted as a violation"
		status=1
	fi
	local entry file line copy report
	local i=0
	for entry in "${cases[@]}"; do
		file="${entry%%|*}"
		line="${entry#*|}"
		copy="$scratch/case$i"
		i=$((i + 1))
		cp -r "$clean" "$copy"
		printf '%s\n' "$line" >>"$copy/src/kernel/$file"
		# Caught, and at the injected line: the file's last.
		report="$(check "$copy" || true)"
		if grep -q "^src/kernel/$file:$(wc -l <"$copy/src/kernel/$file"): " <<<"$report"; then
			continue
		fi
		echo "self-test: not caught: '$line' in src/kernel/$file"
		status=1
	done
	# A public header the kernel includes that comes to include machine.hpp, through another
	# public header: every kernel file that includes it fails, naming the chain.
	copy="$scratch/indirect"
	cp -r "$clean" "$copy"
	printf '%s\n' '#include <helsim/machine.hpp>' >"$copy/include/helsim/injected.hpp"
	printf '%s\n' '#include <helsim/injected.hpp>' >>"$copy/include/helsim/kernlet.hpp"
	report="$(check "$copy" || true)"
	if ! grep -q '^src/kernel/.*: includes <helsim/kernlet.hpp>, which includes <helsim/injected.hpp>, which includes <helsim/machine.hpp>' <<<"$report"; then
		echo "self-test: not caught: a kernel file including kernlet.hpp, which came to include machine.hpp through injected.hpp"
		status=1
	fi
	if ((status == 0)); then
		echo "self-test: all $((${#cases[@]} + 1)) injected violations fail the check; comments and strings do not"
	fi
	return "$status"
}

case "${1:-}" in
--self-test) self_test ;;
*) check "${1:-$here/..}" ;;
esac
