#!/usr/bin/env bash
# Runs the test suite in deterministic mode under seeds 1..N (default 8), on the tests that
# scripts/test.sh built in build/. HELSIM_MODE=deterministic:<seed> turns every threads-mode
# machine of the process into a deterministic one (docs/testing.md).
#
# Left out are the suites whose tests need host threads outside the seeded schedule: two host
# threads attached at once (the second waits for the baton the first holds), a plain
# std::thread that an attached thread waits for, an attached thread stopped until a fiber
# spawned after it resumes it, or code that spins on memory without a syscall. Machine.*,
# Deterministic.ThreadsMode* and Benchmark.TheLoopRunsOnASimulatedThreadPinnedToItsCpu (the
# loop runs on a CPU's host thread) check the mode and seed they configured, which the
# override replaces; strict alternation of yielding fibers holds only without the
# seeded preemption at syscalls, and DirectSwitch.* checks the schedule of threads mode's
# direct switches.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seeds="${1:-8}"
threads_only='FutexWake.*:*/FutexWake.*:Machine.*:QueueDispatcher.*:QueueRing.*:QueueSq.*'
threads_only+=':Token.*:Universe.*:TracePerfetto.CheckFile*:Deterministic.ThreadsMode*'
threads_only+=':ThreadYield.TwoFibersOnOneCpuAlternateStrictly:DirectSwitch.*'
threads_only+=':Supercall.AnAttachedThreadTrapsToo'
threads_only+=':Benchmark.TheLoopRunsOnASimulatedThreadPinnedToItsCpu'
for ((seed = 1; seed <= seeds; ++seed)); do
	echo "helsim: seed $seed"
	# A hang in one seed must fail CI, not use up its time: nothing in the suite runs that long.
	if ! HELSIM_MODE=deterministic:$seed timeout 900 ./build/test/helsim_tests --gtest_brief=1 \
		--gtest_filter="-$threads_only"; then
		echo "helsim: seed $seed failed or hung; run it without --gtest_brief to see the test" >&2
		exit 1
	fi
done
