#!/usr/bin/env python3
"""Instructions per operation of a helsim benchmark, by stage of the path (callgrind).

Usage: scripts/callgrind-stages.py [--entry-line | --all-calls] BENCH_BINARY FILTER COUNTED_FUNCTION
                                   [OPS_PER_CALL]

Runs the benchmark cases matching FILTER twice under callgrind, with a short and a longer
--benchmark_min_time, and subtracts the two profiles: what is left is the steady-state cost of
the extra operations, without process start, machine setup or warm-up. The operations are
counted as the calls of COUNTED_FUNCTION (a substring of a demangled name, such as
"Stream::pair"), divided by OPS_PER_CALL (default 1; a round trip pairs twice, so 2). Each
function's self cost is then put into the first stage whose pattern matches its name.

A function that switches fibers splits callgrind's call edges, so its calls cannot be read off
them. With --entry-line, COUNTED_FUNCTION is instead the start of its signature as written in
the source ("HelError sys_yield(Thread &self"), and the operations are the executions of that
line, which compiles to one instruction per call in an optimised build. That line must not be
inlined into several places (in a Release build it may be), and it counts calls, not switches:
a yield with nothing else to run executes it without switching.

With --all-calls, the operations are every call of COUNTED_FUNCTION that the profile records,
summed over all callers: for "jump_fcontext", which boost.context calls once per fiber switch,
the number of switches, in any build type.

Example (docs/benchmarks.md, "IPC at the floor"):
  scripts/callgrind-stages.py build/bench/helsim_bench BM_Ipc_RoundTrip_SameCpu Stream::pair 2
  scripts/callgrind-stages.py --all-calls build/bench/helsim_bench 'BM_Fiber_Switch$' jump_fcontext
"""
import re
import subprocess
import sys
import tempfile

STAGES = [
    ("scheduling: park/unpark, run queue, fiber switch",
     r"ThreadsHost|RunQueue|Fiber::|jump_fcontext|ontop_fcontext|current_task|this_host_thread"
     r"|host_context|this_cpu_slot|pick_cpu|Host::|Thread::block|Thread::wake|Task::"),
    ("syscall entry and table", r"helsim_syscall|dispatch|without_allocation"),
    ("queue: drive, SQ parse, CQ write, notify", r"IpcQueue|submit_sq_|sys_drive_queue"),
    ("stream: submit, pair, copy, finish",
     r"Stream|submit_exchange|finish_packet|finish_node|Packet|Node|Reaper|exchange|Transfer"
     r"|BounceCopy|copy_from_user|copy_to_user|copy_host|safe_copy"),
    ("handles: Universe::lookup", r"Universe|resolve"),
    ("user side: Dispatcher, ipc.hpp, the benchmark",
     r"Dispatcher|ipc::|helsim::bench|client_round_trip|server_round|BM_|benchmark"
     r"|_Function_handler"),
    ("libc: memcpy, heap", r"memcpy|memmove|memset|malloc|free|operator new|operator delete|_int_"),
]


def profile(binary, case_filter, min_time, out):
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                    f"--benchmark_filter={case_filter}", f"--benchmark_min_time={min_time}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def self_costs(path):
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                          capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        # "file:function [object]"; callgrind marks recursion through fibers as name'2.
        name = re.sub(r"'\d+", "", re.sub(r" \[.*\]$", "", m.group(2)))
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def entry_line_count(path, signature):
    text = subprocess.run(["callgrind_annotate", "--auto=yes", path],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"^\s*([\d,]+) .*" + re.escape(signature), text, re.M)
    if not m:
        sys.exit(f"callgrind-stages: no executed line starts with {signature}")
    return int(m.group(1).replace(",", ""))


def all_calls_of(path, function):
    # The raw profile: "fn=(id) name" and "cfn=(id) name" name a function the first time
    # (later only "(id)"), cfn= a callee, and the "calls=N" line after it counts the calls
    # from the current function and context.
    names, callee, total = {}, "", 0
    with open(path) as profile_file:
        for line in profile_file:
            if line.startswith(("fn=", "cfn=")):
                key, _, value = line.rstrip("\n").partition("=")
                m = re.match(r"\((\d+)\)(?: (.*))?$", value)
                name = value
                if m:
                    if m.group(2) is not None:
                        names[m.group(1)] = m.group(2)
                    name = names.get(m.group(1), "")
                if key == "cfn":
                    callee = name
            elif line.startswith("calls=") and function in callee:
                total += int(line.split()[0][len("calls="):])
    return total


def calls_of(path, function):
    text = subprocess.run(["callgrind_annotate", "--tree=calling", path],
                          capture_output=True, text=True, check=True).stdout
    counts = [int(m.group(1).replace(",", "")) for m in
              re.finditer(r">\s.*" + re.escape(function) + r"\(.*\((\d[\d,]*)x\)", text)]
    if not counts:
        sys.exit(f"callgrind-stages: no calls of {function} in the profile")
    return max(counts)


def stage_of(name):
    function = name.split(":", 1)[-1].replace("(anonymous namespace)", "anon").split("(")[0]
    for stage, pattern in STAGES:
        if re.search(pattern, function):
            return stage
    return "other"


def main():
    args = sys.argv[1:]
    count = calls_of
    if args[:1] == ["--entry-line"]:
        args, count = args[1:], entry_line_count
    elif args[:1] == ["--all-calls"]:
        args, count = args[1:], all_calls_of
    if len(args) not in (3, 4):
        sys.exit(__doc__)
    binary, case_filter, function = args[:3]
    per_call = float(args[3]) if len(args) == 4 else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for min_time in ("0.2", "0.6"):
            out = f"{tmp}/callgrind.{min_time}"
            profile(binary, case_filter, min_time, out)
            runs.append((self_costs(out), count(out, function)))
    (short, short_calls), (long, long_calls) = runs
    ops = (long_calls - short_calls) / per_call
    if ops <= 0:
        sys.exit("callgrind-stages: the longer run made no more operations")
    totals = {}
    for name in set(short) | set(long):
        stage = stage_of(name)
        totals[stage] = totals.get(stage, 0) + long.get(name, 0) - short.get(name, 0)
    print(f"{ops:.0f} operations; instructions per operation: {sum(totals.values()) / ops:.0f}")
    print("| Instructions | Stage |\n|---:|---|")
    for stage, _ in STAGES + [("other", "")]:
        print(f"| {totals.get(stage, 0) / ops:.0f} | {stage} |")


if __name__ == "__main__":
    main()
