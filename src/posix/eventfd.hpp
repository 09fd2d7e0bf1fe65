// eventfd: a 64-bit counter served by the POSIX server on its own passthrough lane, as a pipe
// end is (Managarm's posix subsystem serves its eventfd the same way).
#pragma once

#include <cstdint>

#include "file.hpp"

namespace helsim::posix::detail {

class EventFd final : public OpenFile {
public:
	// `flags`: EFD_NONBLOCK and EFD_SEMAPHORE (EFD_CLOEXEC belongs to the fd).
	EventFd(Executor &executor, std::uint64_t initial, int flags);

	Async<std::int64_t> read(const Requester &who, std::span<std::byte> out,
			std::int64_t offset) override;
	Async<std::int64_t> write(const Requester &who, std::span<const std::byte> data,
			std::int64_t offset) override;
	protocol::StatReply stat() const override;
	void unread(std::span<const std::byte> data) override;
	std::optional<std::uint32_t> status() override;
	bool pollable() const override { return true; }

private:
	// The counter never reaches 2^64 - 1: Linux's ULLONG_MAX is the overflow mark.
	static constexpr std::uint64_t kMax = ~std::uint64_t{0} - 1;
	void changed();

	std::uint64_t count_;
	bool semaphore_;
	Condition readable_; // the count became non-zero
	Condition writable_; // the count went down
};

} // namespace helsim::posix::detail
