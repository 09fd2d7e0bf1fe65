// What several benchmark files share: turning a failed hel call into an exception, pinning the
// calling simulated thread, awaiting an event or IRQ object past a sequence, and the two sides
// of a 64-byte stream round trip (ipc_bench.cpp, scale_bench.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace helsim::bench {

inline void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

// Pins the calling simulated thread to simulated CPU `cpu`.
inline void pin(int cpu) {
	std::uint8_t mask = static_cast<std::uint8_t>(1u << cpu);
	check(helSetAffinity(kHelThisThread, &mask, 1), "helSetAffinity");
}

// Awaits `object` (an event or IRQ object) past `sequence`; returns the new sequence.
inline std::uint64_t await(helsim::Dispatcher &d, HelHandle object, std::uint64_t sequence) {
	d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{object, sequence, 0});
	d.flush();
	auto element = d.wait();
	if (!element)
		throw std::runtime_error("missing completion");
	auto result = element->as<HelEventResult>();
	check(result.error, "await");
	return result.sequence;
}

inline void expect(bool ok, const char *what) {
	if (!ok)
		throw std::runtime_error(what);
}

// ---------------------------------------------------------------- stream round trips

inline constexpr std::size_t kMessage = 64; // payload of every ping-pong and round-trip message

// A stream created in the root universe; spawn() copies each lane into its thread's universe.
inline std::pair<HelHandle, HelHandle> make_stream(helsim::Machine &machine) {
	auto host = machine.attach();
	HelHandle a = kHelNullHandle, b = kHelNullHandle;
	check(helCreateStream(&a, &b, 0), "helCreateStream");
	return {a, b};
}

// How a side submits its exchange and waits for the completion.
enum class Submission { sq, legacy };

// The legacy path: submits `list` with helSubmitAsync under `context` and waits for its
// completion (the Element keeps the CQ chunk that the parsed results point into).
template <typename List>
helsim::Element submit_legacy(helsim::Dispatcher &dispatcher, HelHandle lane, const List &list,
		std::uintptr_t context) {
	check(helSubmitAsync(lane, list.data(), list.size(), dispatcher.queue(), context, 0),
			"helSubmitAsync");
	auto element = dispatcher.wait();
	expect(element && element->context() == context, "missing completion");
	return std::move(*element);
}

// Client: send 64 bytes and receive the reply inline, as one root chain on a long-lived lane.
template <Submission S>
void client_round_trip(helsim::Dispatcher &dispatcher, HelHandle lane, const char *message) {
	namespace ipc = helsim::ipc;
	if constexpr (S == Submission::sq) {
		auto exchange = ipc::exchange_sync(dispatcher, lane, ipc::send_buffer(message, kMessage),
				ipc::recv_inline());
		auto &[sent, reply] = exchange.results;
		check(sent.error, "send request");
		check(reply.error, "receive reply");
		expect(reply.data.size() == kMessage, "short reply");
	} else {
		const auto send = ipc::send_buffer(message, kMessage);
		const auto recv = ipc::recv_inline();
		auto element = submit_legacy(dispatcher, lane, ipc::actions(send, recv), 1);
		auto [sent, reply] = ipc::parse<decltype(send), decltype(recv)>(element);
		check(sent.error, "send request");
		check(reply.error, "receive reply");
		expect(reply.data.size() == kMessage, "short reply");
	}
}

// Server: receive a request inline, then send 64 bytes back; two exchanges per round.
template <Submission S>
void server_round(helsim::Dispatcher &dispatcher, HelHandle lane, const char *reply) {
	namespace ipc = helsim::ipc;
	if constexpr (S == Submission::sq) {
		auto request = ipc::exchange_sync(dispatcher, lane, ipc::recv_inline());
		auto &[text] = request.results;
		check(text.error, "receive request");
		expect(text.data.size() == kMessage, "short request");
		auto sent = ipc::exchange_sync(dispatcher, lane, ipc::send_buffer(reply, kMessage));
		check(std::get<0>(sent.results).error, "send reply");
	} else {
		const auto recv = ipc::recv_inline();
		{
			auto element = submit_legacy(dispatcher, lane, ipc::actions(recv), 2);
			auto [text] = ipc::parse<decltype(recv)>(element);
			check(text.error, "receive request");
			expect(text.data.size() == kMessage, "short request");
		}
		const auto send = ipc::send_buffer(reply, kMessage);
		auto element = submit_legacy(dispatcher, lane, ipc::actions(send), 3);
		auto [sent] = ipc::parse<decltype(send)>(element);
		check(sent.error, "send reply");
	}
}

} // namespace helsim::bench
