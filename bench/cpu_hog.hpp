// A CPU-hogging process beside a benchmark case (ipc_bench.cpp's *_WithHog cases).
#pragma once

#include <benchmark/benchmark.h>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

namespace helsim::bench {

// One child process spinning on a CPU from construction to destruction: the "one CPU-hogging
// process running beside it" of the IPC goals, the way another engineer's build competes for
// this shared VM's two vCPUs. A process rather than a thread, so that it is scheduled as a
// separate task, unpinned, like that build.
class CpuHog {
public:
	CpuHog() {
		const pid_t parent = getpid();
		pid_ = fork();
		if (pid_ < 0)
			error_ = errno;
		if (pid_ != 0)
			return;
		// The child of a multithreaded process may only make async-signal-safe calls: this one
		// makes raw system calls only. The death signal keeps it from spinning on if the
		// benchmark dies without running the destructor; the getppid check covers a parent
		// that died before prctl took effect.
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		// volatile: an endless loop without side effects would be undefined behaviour.
		volatile std::uint64_t spins = 0;
		for (;;)
			spins = spins + 1;
	}
	CpuHog(const CpuHog &) = delete;
	CpuHog &operator=(const CpuHog &) = delete;
	// SIGKILL needs no cooperation from the child; waitpid reaps it so that no zombie outlives
	// the case.
	~CpuHog() {
		if (pid_ <= 0)
			return;
		kill(pid_, SIGKILL);
		while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
		}
	}

	// False if fork failed; error() is its errno then.
	bool running() const { return pid_ > 0; }
	int error() const { return error_; }

private:
	pid_t pid_ = -1;
	int error_ = 0;
};

// Runs the case `body` with a CpuHog running beside it for the whole call: started before the
// timed loop (and the case's setup), killed after it.
inline void with_cpu_hog(benchmark::State &state, void (*body)(benchmark::State &)) {
	CpuHog hog;
	if (!hog.running()) {
		state.SkipWithError((std::string{"fork failed: "} + std::strerror(hog.error())).c_str());
		return;
	}
	body(state);
}

} // namespace helsim::bench
