// A process's signal state as the server keeps it.
#pragma once

#include <signal.h>

namespace helsim::posix::detail {

struct SignalState {
	// fork: dispositions, mask and alternate stack inherited; nothing pending.
	SignalState inherit_for_fork() const { return SignalState{}; }
	// execve: handled signals reset to SIG_DFL, ignored ones stay ignored; mask and pending kept.
	void reset_for_exec() {}
};

} // namespace helsim::posix::detail
