// stamped_send: a new stream action prototyped with helsim/extension.hpp (docs/extending.md,
// "2. A new stream action"), for IPC latency research.
//
// sendStamped is a send the kernel stamps: at submission it captures the sender's bytes and
// the machine time; when a receive meets it, the kernel prefixes the bytes with a StampHeader
// {submitted_ns, paired_ns} and delivers header and bytes to the built-in recvInline or
// recvToBuffer. paired_ns - submitted_ns is how long the message waited on the stream for its
// partner (machine time: virtual in deterministic mode).
//
//   submission errors (the whole exchange is refused): kHelErrIllegalArgs for more than
//     kMaxPayload bytes or an item flag other than kHelItemChain; kHelErrNoMemory
//   completion (a HelSimpleResult): kHelErrNone; kHelErrBufferTooSmall on both sides when
//     header and bytes do not fit the receive; kHelErrFault (the receive: kHelErrRemoteFault)
//     when the sender's buffer was not readable; kHelErrTransmissionMismatch on both sides
//     against any action but the two receives; a dismiss dismisses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace stamped_send {

inline constexpr int kActionSendStamped = helsim::ext::kFirstExtensionAction + 2;

// What a receive gets ahead of the sender's bytes.
struct StampHeader {
	std::uint64_t submitted_ns;
	std::uint64_t paired_ns;
};

inline constexpr std::size_t kMaxPayload =
		helsim::ext::StreamItem::kMaxCapture - sizeof(StampHeader);

// Decode: the sender's bytes after room for the header, and the submission's time in it. A
// buffer that cannot be read is not refused here: the pairing reports it on both sides, as it
// does for a faulting sendFromBuffer.
inline HelError decode_stamped(helsim::ext::Caller &caller, const HelAction &action,
		helsim::ext::StreamItem item) {
	HelError e = item.capture(caller, action.buffer, action.length, sizeof(StampHeader));
	if (e != kHelErrNone && e != kHelErrFault)
		return e;
	const std::uint64_t submitted = caller.now();
	std::memcpy(item.data().data() + offsetof(StampHeader, submitted_ns), &submitted,
			sizeof(submitted));
	return kHelErrNone;
}

// Pair: the pairing's time into the header, then the built-in delivery (checked copy, length
// and fault errors) to whichever receive it met.
inline void pair_stamped(helsim::ext::StreamPair &pair) {
	helsim::ext::StreamItem send = pair.first();
	const std::uint64_t paired = pair.now();
	std::memcpy(send.data().data() + offsetof(StampHeader, paired_ns), &paired, sizeof(paired));
	pair.deliver(send, pair.second());
}

// Registers sendStamped on `machine`, pairing with recvInline and recvToBuffer.
inline void install(helsim::Machine &machine) {
	namespace ext = helsim::ext;
	ext::register_stream_action(machine, kActionSendStamped, "sendStamped",
			ext::StreamResult::simple, decode_stamped);
	ext::register_stream_pair(machine, kActionSendStamped, kHelActionRecvInline, pair_stamped);
	ext::register_stream_pair(machine, kActionSendStamped, kHelActionRecvToBuffer, pair_stamped);
}

// A sendStamped item for helsim::ipc's exchange builders.
inline helsim::ipc::Leaf<helsim::ipc::SimpleResult> send_stamped(const void *buffer,
		std::size_t length) {
	HelAction action = helsim::ipc::make_action(kActionSendStamped);
	action.buffer = const_cast<void *>(buffer);
	action.length = length;
	return {action};
}

// What a receive got from a sendStamped: the header and the sender's bytes.
struct Stamped {
	StampHeader header;
	std::span<const std::byte> payload;
	std::uint64_t waited_ns() const { return header.paired_ns - header.submitted_ns; }
};

// Splits received bytes; nothing if they are too short to hold a header.
inline std::optional<Stamped> parse(std::span<const std::byte> received) {
	if (received.size() < sizeof(StampHeader))
		return std::nullopt;
	Stamped stamped{};
	std::memcpy(&stamped.header, received.data(), sizeof(StampHeader));
	stamped.payload = received.subspan(sizeof(StampHeader));
	return stamped;
}

} // namespace stamped_send
