// The file status page: Managarm's protocols/fs StatusPage { u64 seqlock; u64 sequence;
// int flags; int status; }, byte for byte. A device server writes one per open description;
// the POSIX server maps it read-only and reads a device's readiness from it without a request.
// The seqlock protocol is the clock tracker page's (protocol.hpp, steps W1-W3 and R1-R3).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace helsim::posix::detail {

struct StatusPage {
	std::uint64_t seqlock;  // odd while the device server updates the page
	std::uint64_t sequence; // bumped at every change of `status`
	std::int32_t flags;     // 0 (Managarm's is unused too)
	std::int32_t status;    // poll bits
};
static_assert(sizeof(StatusPage) == 24);

// Writer (the device server only).
inline void write_status(StatusPage &page, std::uint64_t sequence, std::uint32_t status) {
	std::atomic_ref<std::uint64_t> seq{page.seqlock};
	std::uint64_t s = seq.load(std::memory_order_relaxed);
	seq.store(s + 1, std::memory_order_relaxed); // W1
	std::atomic_ref<std::uint64_t>{page.sequence}.store(sequence, std::memory_order_release);
	std::atomic_ref<std::int32_t>{page.status}.store(static_cast<std::int32_t>(status),
			std::memory_order_release);          // W2
	seq.store(s + 2, std::memory_order_release); // W3
}

// Reader: nullopt while the writer is inside or if it moved on meanwhile (Managarm's
// DeviceFile::pollStatus then asks the device by request; helsim's caller does too).
struct StatusRead {
	std::uint64_t sequence;
	std::uint32_t status;
};
inline std::optional<StatusRead> read_status(const StatusPage &page) {
	auto &p = const_cast<StatusPage &>(page);
	std::atomic_ref<std::uint64_t> seq{p.seqlock};
	std::uint64_t before = seq.load(std::memory_order_acquire); // R1
	if (before & 1)
		return std::nullopt;
	StatusRead read{};
	read.sequence = std::atomic_ref<std::uint64_t>{p.sequence}.load(std::memory_order_acquire);
	read.status = static_cast<std::uint32_t>(
			std::atomic_ref<std::int32_t>{p.status}.load(std::memory_order_acquire)); // R2
	if (seq.load(std::memory_order_relaxed) != before)                                // R3
		return std::nullopt;
	return read;
}

} // namespace helsim::posix::detail
