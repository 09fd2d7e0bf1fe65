// async_checksum: an asynchronous syscall prototyped with helsim/extension.hpp.
//
// helsimChecksum(queue, context, buffer, length, cancellationTag) reads `length` bytes of the
// caller's memory through the kernel's checked user copies, computes their Adler-32 in the
// kernel and completes on `queue` later: after a simulated per-byte cost of the "checksum
// engine", from a machine timer. kHelSubmitCancel with the tag on the queue cancels it.
//
//   submission errors (returned by the call; nothing is posted):
//     kHelErrIllegalArgs  length above kMaxChecksumBytes
//     kHelErrFault        the buffer is not readable memory of the caller
//     kHelErrNoDescriptor / kHelErrBadDescriptor / kHelErrBadRights   the queue handle
//   completion (a ChecksumResult with `context`): kHelErrNone and the checksum, or
//     kHelErrCancelled (a cancellation, or the machine's teardown) and no checksum.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace async_checksum {

inline constexpr std::uint32_t kCallChecksum = helsim::kFirstExtensionSyscall + 40;
inline constexpr std::size_t kMaxChecksumBytes = std::size_t{1} << 20;
// The engine's cost: a fixed latency plus a per-byte time (virtual time in deterministic
// mode, wall-clock time in threads mode).
inline constexpr std::uint64_t kLatencyNs = 1'000;
inline constexpr std::uint64_t kBytesPerNs = 4;
// What reading the buffer into the kernel costs the caller, on top of the syscall's entry and
// exit (deterministic mode only).
inline constexpr std::uint64_t kCopyBytesPerNs = 16;

// What the completion carries: a HelSimpleResult's two words, then the checksum.
struct ChecksumResult {
	HelError error;
	int reserved;
	std::uint32_t checksum;
	std::uint32_t length;
};

// Adler-32 (RFC 1950), the same function the host baseline runs.
inline std::uint32_t adler32(std::span<const std::byte> bytes) {
	constexpr std::uint32_t kMod = 65521;
	// 5552 bytes is the most that keep both sums below 2^32 before a reduction.
	constexpr std::size_t kBlock = 5552;
	std::uint32_t a = 1, b = 0;
	while (!bytes.empty()) {
		std::size_t n = std::min(bytes.size(), kBlock);
		for (std::byte byte : bytes.first(n)) {
			a += std::to_integer<std::uint32_t>(byte);
			b += a;
		}
		a %= kMod;
		b %= kMod;
		bytes = bytes.subspan(n);
	}
	return (b << 16) | a;
}

// args: queue, context, buffer, length, cancellation tag.
inline HelError checksum_call(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	auto queue = static_cast<HelHandle>(args[0]);
	auto context = static_cast<std::uintptr_t>(args[1]);
	const auto *buffer = reinterpret_cast<const void *>(args[2]);
	auto length = static_cast<std::size_t>(args[3]);
	auto tag = static_cast<std::uint64_t>(args[4]);
	// Decode: everything the call can refuse is refused before it starts an operation.
	if (length > kMaxChecksumBytes)
		return kHelErrIllegalArgs;
	std::vector<std::byte> bytes(length);
	if (!caller.copy_from_user(bytes.data(), buffer, length))
		return kHelErrFault;
	caller.charge(length / kCopyBytesPerNs);
	helsim::ext::AsyncOperation operation;
	helsim::ext::AsyncRequest request{queue, context, tag, sizeof(ChecksumResult), {}};
	if (HelError e = caller.start(request, operation); e != kHelErrNone)
		return e;
	// Invoke: the result is known now, but the engine delivers it once its time has passed.
	ChecksumResult result{kHelErrNone, 0, adler32(bytes), static_cast<std::uint32_t>(length)};
	caller.after(kLatencyNs + length / kBytesPerNs, [operation, result] {
		// false when a cancellation ended the operation first: then nothing is posted.
		operation.complete(std::as_bytes(std::span{&result, 1}));
	});
	return kHelErrNone;
}

inline void install(helsim::Machine &machine) {
	helsim::ext::register_syscall(machine, kCallChecksum, "helsimChecksum", checksum_call);
}

// The user-space stub, as hel-stubs.h would have it.
inline HelError helsim_checksum(HelHandle queue, std::uintptr_t context, const void *buffer,
		std::size_t length, std::uint64_t cancellation_tag) {
	return helSyscall5(kCallChecksum, static_cast<HelWord>(queue), static_cast<HelWord>(context),
			reinterpret_cast<HelWord>(buffer), static_cast<HelWord>(length),
			static_cast<HelWord>(cancellation_tag));
}

} // namespace async_checksum
