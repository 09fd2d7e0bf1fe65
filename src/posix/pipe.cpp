#include "pipe.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

namespace helsim::posix::detail {

Async<std::int64_t> PipeEnd::read(const Requester &who, std::span<std::byte> out, std::int64_t) {
	PipeBuffer &pipe = *buffer_;
	if (out.empty())
		co_return 0;
	for (;;) {
		if (!who.alive())
			co_return -ECANCELED; // nobody to answer: leave the data for the next reader
		if (!pipe.bytes.empty()) {
			std::size_t n = std::min(out.size(), pipe.bytes.size());
			std::copy_n(pipe.bytes.begin(), n, out.begin());
			pipe.bytes.erase(pipe.bytes.begin(),
					pipe.bytes.begin() + static_cast<std::ptrdiff_t>(n));
			pipe.writable.notify_all();
			pipe.watchers.changed();
			co_return static_cast<std::int64_t>(n);
		}
		if (pipe.writers == 0)
			co_return 0; // end of file
		if (nonblocking())
			co_return -EAGAIN;
		// Cancelled (a signal for the reader): nothing was taken, so nothing is lost.
		if (who.cancel && who.cancel->cancelled)
			co_return -EINTR;
		if (who.cancel)
			who.cancel->waiting = &pipe.readable;
		co_await pipe.readable.wait();
		if (who.cancel)
			who.cancel->waiting = nullptr;
	}
}

// Linux's rules: a write of at most kPipeAtomic bytes goes in whole or not at all; a larger
// one may be split. Blocking writes wait until everything is in; non-blocking ones take what
// fits (-EAGAIN if nothing does).
Async<std::int64_t> PipeEnd::write(const Requester &who, std::span<const std::byte> data,
		std::int64_t) {
	PipeBuffer &pipe = *buffer_;
	std::size_t written = 0;
	auto partial = [&](std::int64_t error) {
		return written ? static_cast<std::int64_t>(written) : error;
	};
	if (data.empty())
		co_return 0; // as Linux's pipe_write: a null write succeeds, readers or not
	while (written < data.size()) {
		if (!who.alive())
			co_return partial(-ECANCELED);
		if (pipe.readers == 0)
			co_return partial(-EPIPE);
		// unread() may have put bytes back over a refill: then the pipe is over capacity.
		std::size_t used = pipe.bytes.size();
		std::size_t room = used < kPipeCapacity ? kPipeCapacity - used : 0;
		std::size_t left = data.size() - written;
		bool atomic = data.size() <= kPipeAtomic;
		std::size_t n = atomic ? (room >= left ? left : 0) : std::min(room, left);
		if (n) {
			pipe.bytes.insert(pipe.bytes.end(), data.begin() + static_cast<std::ptrdiff_t>(written),
					data.begin() + static_cast<std::ptrdiff_t>(written + n));
			written += n;
			pipe.readable.notify_all();
			pipe.watchers.changed();
			continue;
		}
		if (nonblocking())
			co_return partial(-EAGAIN);
		co_await pipe.writable.wait();
	}
	co_return static_cast<std::int64_t>(written);
}

void PipeEnd::unread(std::span<const std::byte> data) {
	buffer_->bytes.insert(buffer_->bytes.begin(), data.begin(), data.end());
	buffer_->readable.notify_all();
	buffer_->watchers.changed();
}

// Linux's pipe_poll: the read end is readable with data and hung up without writers; the
// write end is writable with room for an atomic write and in error without readers.
std::optional<std::uint32_t> PipeEnd::status() {
	const PipeBuffer &pipe = *buffer_;
	std::uint32_t bits = 0;
	if (read_end_) {
		if (!pipe.bytes.empty())
			bits |= POLLIN | POLLRDNORM;
		if (pipe.writers == 0)
			bits |= POLLHUP;
	} else {
		if (pipe.bytes.size() + kPipeAtomic <= kPipeCapacity)
			bits |= POLLOUT | POLLWRNORM;
		if (pipe.readers == 0)
			bits |= POLLERR;
	}
	return bits;
}

protocol::StatReply PipeEnd::stat() const {
	protocol::StatReply reply{};
	reply.ino = buffer_->ino;
	reply.mode = S_IFIFO | 0600;
	reply.nlink = 1;
	return reply;
}

void PipeEnd::released() {
	if (read_end_) {
		--buffer_->readers;
		buffer_->writable.notify_all(); // blocked writers now fail with EPIPE
	} else {
		--buffer_->writers;
		buffer_->readable.notify_all(); // blocked readers now see end of file
	}
	buffer_->watchers.changed();
}

} // namespace helsim::posix::detail
