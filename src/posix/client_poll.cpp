// poll, epoll and eventfd inside a process: requests on the POSIX lane, as mlibc sends
// EpollCallRequest and EpollWaitRequest. The server writes revents and events straight into
// the caller's arrays (kHelSubmitWriteMemory), as Linux's copy_to_user.
#include <sys/eventfd.h>

#include <cerrno>
#include <string_view>

#include <helsim/posix.hpp>

#include "client.hpp"

namespace helsim::posix {

using detail::ClientThread;

namespace {

constexpr std::int64_t kForever = -1;
constexpr nfds_t kMaxPollFds = 1024; // as the server's

std::int64_t poll_ns(ClientThread &t, struct pollfd *fds, nfds_t count, std::int64_t timeout,
		std::optional<std::uint64_t> since = std::nullopt) {
	// Linux checks the count against RLIMIT_NOFILE (1024 by default) before the array.
	if (count > kMaxPollFds)
		return -EINVAL;
	if (count && !fds)
		return -EFAULT;
	auto head = detail::make(protocol::kPoll, static_cast<std::int64_t>(count),
			static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(fds)), timeout);
	std::string_view tail{reinterpret_cast<const char *>(fds), count * sizeof(struct pollfd)};
	// Only a wait can be interrupted; poll is never restarted after a handler (Linux).
	return timeout == 0 ? detail::request(t, head, tail)
						: detail::blocking_request(t, head, tail, nullptr, false, since);
}

} // namespace

int poll(struct pollfd *fds, nfds_t count, int timeout_ms) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t timeout = timeout_ms < 0 ? kForever : std::int64_t{timeout_ms} * 1'000'000;
	return static_cast<int>(poll_ns(*t, fds, count, timeout));
}

// The client sets the mask around the request. A signal the mask unblocks may run its handler
// before the request is on its way (at the mask's own call); the wait counts handlers from
// before the mask was set, so it ends at once with -EINTR, as Linux's atomic mask would
// (docs/posix-readiness.md#ppolls-mask).
int ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t ns = kForever;
	if (timeout) {
		if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)
			return -EINVAL;
		constexpr std::int64_t kMaxSeconds = (std::int64_t{1} << 62) / 1'000'000'000;
		ns = timeout->tv_sec >= kMaxSeconds
				? std::int64_t{1} << 62
				: std::int64_t{timeout->tv_sec} * 1'000'000'000 + timeout->tv_nsec;
	}
	sigset_t old;
	std::uint64_t since = t->handlers_run;
	if (mask)
		if (int e = posix::sigprocmask(SIG_SETMASK, mask, &old))
			return e;
	auto n = static_cast<int>(poll_ns(*t, fds, count, ns, since));
	if (mask)
		posix::sigprocmask(SIG_SETMASK, &old, nullptr);
	return n;
}

int epoll_create1(int flags) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(detail::request(*t, detail::make(protocol::kEpollCreate, flags)));
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
	HELSIM_POSIX_CLIENT(t);
	std::string_view tail;
	if (op != EPOLL_CTL_DEL) {
		if (!event)
			return -EFAULT;
		tail = {reinterpret_cast<const char *>(event), sizeof(*event)};
	}
	return static_cast<int>(
			detail::request(*t, detail::make(protocol::kEpollCtl, epfd, op, fd), tail));
}

int epoll_wait(int epfd, struct epoll_event *events, int max_events, int timeout_ms) {
	HELSIM_POSIX_CLIENT(t);
	if (max_events <= 0)
		return -EINVAL;
	if (!events)
		return -EFAULT;
	std::int64_t timeout = timeout_ms < 0 ? kForever : std::int64_t{timeout_ms} * 1'000'000;
	auto head = detail::make(protocol::kEpollWait, epfd,
			static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(events)), max_events,
			timeout);
	return static_cast<int>(
			timeout == 0 ? detail::request(*t, head) : detail::blocking_request(*t, head));
}

int eventfd(unsigned int initial, int flags) {
	HELSIM_POSIX_CLIENT(t);
	return static_cast<int>(detail::request(*t, detail::make(protocol::kEventfd, initial, flags)));
}

} // namespace helsim::posix
