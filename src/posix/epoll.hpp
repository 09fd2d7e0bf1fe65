// An epoll instance: an open file description (so an fd, dup'd and inherited like any other)
// holding an interest list, served by the POSIX server. Its passthrough lane answers nothing
// useful (read and write are -EINVAL, as Linux's eventpoll fops have none).
#pragma once

#include <fcntl.h>
#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "file.hpp"

namespace helsim::posix::detail {

class EpollFile final : public OpenFile {
public:
	explicit EpollFile(Executor &) : OpenFile{O_RDWR} {}

	struct Interest {
		int fd;
		std::weak_ptr<OpenFile> file;
		std::uint32_t events; // what was asked, with EPOLLET / EPOLLONESHOT
		std::uint64_t data;
		bool reported_any = false; // edge-triggered: a report was made at `reported_sequence`
		std::uint64_t reported_sequence = 0;
		bool disabled = false; // EPOLLONESHOT after its report, until EPOLL_CTL_MOD
	};

	// EPOLL_CTL_ADD / MOD / DEL, with Linux's errors for the list itself (-EEXIST, -ENOENT,
	// -EINVAL for an unknown op).
	int control(int op, int fd, const std::shared_ptr<OpenFile> &file, const epoll_event *event);
	// The interests whose files still have fds (Linux: a description leaves every interest
	// list when its last fd closes).
	std::vector<Interest> &interests();
	// The list as it is (interests() prunes it first).
	std::vector<Interest> &list() { return interests_; }

	protocol::StatReply stat() const override;
	// POLLIN when an interest is ready now (level-triggered view). Nesting epoll instances is
	// not supported (epoll_ctl refuses an epoll target with -EINVAL), and a poll() blocked on
	// an epoll fd is not woken by its interests' changes (docs/posix-readiness.md).
	std::optional<std::uint32_t> status() override;
	bool pollable() const override { return true; }

private:
	std::vector<Interest> interests_; // in the order added: reports come out in that order
};

} // namespace helsim::posix::detail
