// Pipes, served by the POSIX server's file side (as Managarm's fifo.cpp): one buffer, a read
// end and a write end, each an open file description with its own passthrough lane.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>

#include "file.hpp"

namespace helsim::posix::detail {

// Linux's defaults: 64 KiB of buffer, writes up to 4 KiB are atomic.
inline constexpr std::size_t kPipeCapacity = std::size_t{64} << 10;
inline constexpr std::size_t kPipeAtomic = 4096;

struct PipeBuffer {
	explicit PipeBuffer(Executor &executor) : readable{executor}, writable{executor} {}
	std::deque<std::byte> bytes;
	int readers = 1; // open read-end descriptions
	int writers = 1;
	std::uint64_t ino = 0;
	Condition readable;      // data arrived or the last writer left
	Condition writable;      // room appeared or the last reader left
	StatusWatchers watchers; // both ends' pollers: every change above changes their status
};

class PipeEnd final : public OpenFile {
public:
	PipeEnd(std::shared_ptr<PipeBuffer> buffer, bool read_end, int status_flags)
	: OpenFile{status_flags}, buffer_{std::move(buffer)}, read_end_{read_end} {}

	Async<std::int64_t> read(const Requester &who, std::span<std::byte> out,
			std::int64_t offset) override;
	Async<std::int64_t> write(const Requester &who, std::span<const std::byte> data,
			std::int64_t offset) override;
	protocol::StatReply stat() const override;
	void unread(std::span<const std::byte> data) override;
	std::optional<std::uint32_t> status() override;
	StatusWatchers &watchers() override { return buffer_->watchers; }
	bool pollable() const override { return true; }

protected:
	void released() override;

private:
	std::shared_ptr<PipeBuffer> buffer_;
	bool read_end_;
};

} // namespace helsim::posix::detail
