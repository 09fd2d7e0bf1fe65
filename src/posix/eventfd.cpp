#include "eventfd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace helsim::posix::detail {

EventFd::EventFd(Executor &executor, std::uint64_t initial, int flags)
: OpenFile{O_RDWR | (flags & EFD_NONBLOCK ? O_NONBLOCK : 0)}, count_{initial},
  semaphore_{(flags & EFD_SEMAPHORE) != 0}, readable_{executor}, writable_{executor} {}

void EventFd::changed() {
	readable_.notify_all();
	writable_.notify_all();
	watchers().changed();
}

// Linux's eventfd_read: 8 bytes at least; the whole count (or 1 in semaphore mode) is taken.
Async<std::int64_t> EventFd::read(const Requester &who, std::span<std::byte> out, std::int64_t) {
	if (out.size() < sizeof(std::uint64_t))
		co_return -EINVAL;
	for (;;) {
		if (!who.alive())
			co_return -ECANCELED;
		if (count_) {
			std::uint64_t value = semaphore_ ? 1 : count_;
			count_ -= value;
			std::memcpy(out.data(), &value, sizeof(value));
			changed();
			co_return sizeof(value);
		}
		if (nonblocking())
			co_return -EAGAIN;
		if (who.cancel && who.cancel->cancelled)
			co_return -EINTR;
		if (who.cancel)
			who.cancel->waiting = &readable_;
		co_await readable_.wait();
		if (who.cancel)
			who.cancel->waiting = nullptr;
	}
}

// Linux's eventfd_write: ULLONG_MAX is refused; a sum that would reach it waits for a read.
Async<std::int64_t> EventFd::write(const Requester &who, std::span<const std::byte> data,
		std::int64_t) {
	if (data.size() < sizeof(std::uint64_t))
		co_return -EINVAL;
	std::uint64_t value = 0;
	std::memcpy(&value, data.data(), sizeof(value));
	if (value == ~std::uint64_t{0})
		co_return -EINVAL;
	for (;;) {
		if (!who.alive())
			co_return -ECANCELED;
		if (kMax - count_ >= value) {
			count_ += value;
			if (value)
				changed();
			co_return sizeof(value);
		}
		if (nonblocking())
			co_return -EAGAIN;
		co_await writable_.wait();
	}
}

// A value the reader could not take goes back into the count.
void EventFd::unread(std::span<const std::byte> data) {
	std::uint64_t value = 0;
	std::memcpy(&value, data.data(), std::min(data.size(), sizeof(value)));
	count_ += value;
	changed();
}

protocol::StatReply EventFd::stat() const {
	protocol::StatReply reply{};
	reply.mode = 0600; // an anonymous inode: no file type bits, as Linux's anon_inodefs
	reply.nlink = 1;
	return reply;
}

std::optional<std::uint32_t> EventFd::status() {
	std::uint32_t bits = 0;
	if (count_)
		bits |= POLLIN | POLLRDNORM;
	if (count_ < kMax)
		bits |= POLLOUT | POLLWRNORM;
	return bits;
}

} // namespace helsim::posix::detail
