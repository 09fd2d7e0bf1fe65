// poll, epoll and eventfd inside a process.
#include <cerrno>

#include <helsim/posix.hpp>

#include "client.hpp"

namespace helsim::posix {

int poll(struct pollfd *, nfds_t, int) { return -ENOSYS; }
int ppoll(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *) { return -ENOSYS; }
int epoll_create1(int) { return -ENOSYS; }
int epoll_ctl(int, int, int, struct epoll_event *) { return -ENOSYS; }
int epoll_wait(int, struct epoll_event *, int, int) { return -ENOSYS; }
int eventfd(unsigned int, int) { return -ENOSYS; }

} // namespace helsim::posix
