// A process's signal state as the server keeps it, and the frame the server writes into the
// process's memory to run a handler (docs/posix-signals.md).
#pragma once

#include <signal.h>
#include <ucontext.h>

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

#include <helsim/hel.h>

namespace helsim::posix::detail {

inline constexpr int kMaxSignal = 64;
// The per-process stack signal frames go on when no alternate stack is used.
inline constexpr std::uint64_t kSignalStackSize = std::uint64_t{64} << 10;

inline constexpr std::uint64_t bit(int signo) { return std::uint64_t{1} << (signo - 1); }
inline constexpr std::uint64_t kUnblockable = bit(SIGKILL) | bit(SIGSTOP);

// sigaction as it travels (the client converts its struct sigaction): the handler or
// sa_sigaction as one word, SA_* flags, sa_mask as a 64-bit set.
struct SigactionWire {
	std::uint64_t handler;
	std::uint64_t flags;
	std::uint64_t mask;
};

// What sits in the process's memory while a handler runs. The server keeps its own record of
// every frame it pushed, so the contents are trusted only for uc_sigmask.
struct SignalFrame {
	std::uint64_t magic;
	std::uint64_t signo;
	std::uint64_t handler; // what the trampoline runs, and how (SA_SIGINFO, SA_RESTART)
	std::uint64_t flags;
	ucontext_t context;
	siginfo_t info;
};
inline constexpr std::uint64_t kFrameMagic = 0x5349474652414d45; // "SIGFRAME"

// Where the server points a thread to run a handler (client_signals.cpp): calls it, then
// returns through kSuperSigRestore(frame). Host code is shared, so its address is valid in
// every process.
void signal_trampoline(HelWord signo, HelWord info, HelWord context, HelWord handler, HelWord flags,
		HelWord frame);

// Linux's smallest alternate stack (the kernel's MINSIGSTKSZ; glibc's macro is a sysconf).
inline constexpr std::size_t kMinSignalStack = 2048;

enum class Default { terminate, ignore, stop };

inline Default default_action(int signo) {
	switch (signo) {
	case SIGCHLD:
	case SIGURG:
	case SIGWINCH:
	case SIGCONT: return Default::ignore;
	case SIGSTOP:
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU: return Default::stop;
	default: return Default::terminate;
	}
}

struct SignalState {
	std::array<SigactionWire, kMaxSignal + 1> actions{}; // [0] unused; handler 0 = SIG_DFL
	std::uint64_t blocked = 0;
	std::uint64_t standard_pending = 0; // signals 1..31, each at most once
	std::array<siginfo_t, 32> standard_info{};
	std::deque<siginfo_t> realtime; // 32..64 in the order they came
	stack_t altstack{nullptr, SS_DISABLE, 0};
	// Handlers run so far (at least one delivered signal since a SigMask answer: sigsuspend
	// returns at once; docs/posix-signals.md#sigsuspend).
	std::uint64_t seq = 0;
	// sigtimedwait is waiting for these: they wake it even while blocked.
	std::uint64_t waiting = 0;
	// helInterruptThread was called and the thread has not stopped since: once is enough.
	bool interrupted = false;
	// The thread page's flag was moved to 2: the client raises at its guard's exit.
	bool delayed = false;

	// Frames pushed and not yet restored, innermost last.
	struct Pushed {
		std::uint64_t address;
		bool on_altstack;
		bool has_mask = false; // the mask to return to, instead of the frame's uc_sigmask
		std::uint64_t mask = 0;
	};
	std::vector<Pushed> frames;
	std::uint64_t stack_base = 0; // the signal stack, allocated at the first delivery

	bool ignored(int signo) const {
		auto handler = actions[signo].handler;
		return handler == reinterpret_cast<std::uint64_t>(SIG_IGN) ||
				(handler == reinterpret_cast<std::uint64_t>(SIG_DFL) &&
						default_action(signo) != Default::terminate);
	}
	std::uint64_t pending() const {
		std::uint64_t set = standard_pending;
		for (const auto &info : realtime)
			set |= bit(info.si_signo);
		return set;
	}
	std::uint64_t deliverable() const { return pending() & ~blocked; }
	void add(const siginfo_t &info) {
		if (info.si_signo < 32) {
			if (!(standard_pending & bit(info.si_signo)))
				standard_info[info.si_signo] = info;
			standard_pending |= bit(info.si_signo);
		} else {
			realtime.push_back(info);
		}
	}
	// Takes the lowest-numbered signal of `set` (Linux takes standard signals first).
	bool take(std::uint64_t set, siginfo_t &info) {
		std::uint64_t standard = standard_pending & set;
		if (standard) {
			int signo = __builtin_ctzll(standard) + 1;
			standard_pending &= ~bit(signo);
			info = standard_info[signo];
			return true;
		}
		int best = 0;
		for (const auto &queued : realtime)
			if ((set & bit(queued.si_signo)) && (!best || queued.si_signo < best))
				best = queued.si_signo;
		for (auto it = realtime.begin(); best && it != realtime.end(); ++it)
			if (it->si_signo == best) {
				info = *it;
				realtime.erase(it);
				return true;
			}
		return false;
	}
	void discard(int signo) {
		standard_pending &= ~bit(signo);
		std::erase_if(realtime, [signo](const siginfo_t &info) { return info.si_signo == signo; });
	}
	bool on_altstack() const { return !frames.empty() && frames.back().on_altstack; }

	// fork: dispositions, mask and alternate stack inherited; nothing pending, no frame.
	SignalState inherit_for_fork() const {
		SignalState child;
		child.actions = actions;
		child.blocked = blocked;
		child.altstack = altstack;
		return child;
	}
	// execve: handled signals reset to SIG_DFL, ignored ones stay ignored; mask and pending
	// kept; the alternate stack and every frame belonged to the old program.
	void reset_for_exec() {
		for (auto &action : actions) {
			if (action.handler != reinterpret_cast<std::uint64_t>(SIG_IGN))
				action.handler = reinterpret_cast<std::uint64_t>(SIG_DFL);
			action.flags = 0;
			action.mask = 0;
		}
		altstack = stack_t{nullptr, SS_DISABLE, 0};
		frames.clear();
		delayed = false;
		stack_base = 0; // the new image's space has none yet
	}
};

} // namespace helsim::posix::detail
