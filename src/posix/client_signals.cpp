// The signal calls inside a process.
#include <cerrno>

#include <helsim/posix.hpp>

#include "client.hpp"

namespace helsim::posix {

int sigaction(int, const struct sigaction *, struct sigaction *) { return -ENOSYS; }
int sigprocmask(int, const sigset_t *, sigset_t *) { return -ENOSYS; }
int sigpending(sigset_t *) { return -ENOSYS; }
int sigsuspend(const sigset_t *) { return -ENOSYS; }
int pause() { return -ENOSYS; }
int kill(pid_t, int) { return -ENOSYS; }
int raise(int) { return -ENOSYS; }
int sigaltstack(const stack_t *, stack_t *) { return -ENOSYS; }
int sigtimedwait(const sigset_t *, siginfo_t *, const struct timespec *) { return -ENOSYS; }

} // namespace helsim::posix
