// Send and receive as rows of the stream action registry: sendFromBuffer and
// sendFromBufferSg, each pairing with recvInline and recvToBuffer.
#include <cstring>
#include <iterator>
#include <memory>
#include <new>

#include "kernel/core/kernel.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/memory/bounce_copy.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

namespace {

// A send/receive copy that has to fault pages in (and may wait for a pager). It finishes both
// nodes when done.
class Transfer final : public BounceCopy, public DeferredStart {
public:
	// Copies what needs no fault at once (a streamed send from present pages or host memory:
	// no copy object, no deferral); the rest starts once the submission's worklist is done
	// (the nodes stay in flight until done(), so nothing frees them meanwhile).
	static void start(Node &send, Node &recv, Reaper &reaper) {
		CopyEndpoint source;
		if (send.buffered) {
			source.kernel = const_cast<std::byte *>(send.data());
		} else {
			source.space = send.packet->space;
			source.address = reinterpret_cast<std::uintptr_t>(send.user_buffer);
		}
		CopyEndpoint target{recv.packet->space, nullptr, nullptr,
				reinterpret_cast<std::uintptr_t>(recv.user_buffer)};
		std::size_t copied = copy_directly(source, target, send.length, 0);
		if (copied == send.length) {
			recv.result_length = send.length;
			finish_node(send, kHelErrNone, reaper);
			finish_node(recv, kHelErrNone, reaper);
			return;
		}
		reaper.defer(*new Transfer{send, recv, std::move(source), std::move(target), copied});
	}
	void start_deferred() override { BounceCopy::start(); }

	// A send above kMaxBufferedSend bytes into pages that fault makes one: from the cache,
	// not the heap.
	static void *operator new(std::size_t bytes) {
		if (void *memory = StreamCache::take(StreamCache::kTransfer, bytes))
			return memory;
		throw std::bad_alloc{};
	}
	static void operator delete(void *memory, std::size_t bytes) {
		StreamCache::give(memory, StreamCache::kTransfer, bytes);
	}

private:
	Transfer(Node &send, Node &recv, CopyEndpoint source, CopyEndpoint target, std::size_t copied)
	: BounceCopy{std::move(source), std::move(target), send.length, copied}, send_{send},
	  recv_{recv} {}

	// A fault on the sender's side is the sender's; on the receiver's side the receiver's,
	// and the sender hears of it unless its data was buffered already.
	void done(HelError error, bool source_failed) override {
		HelError send_error = kHelErrNone, recv_error = kHelErrNone;
		if (error != kHelErrNone && source_failed) {
			send_error = error;
			recv_error = kHelErrRemoteFault;
		} else if (error != kHelErrNone) {
			send_error = send_.buffered ? kHelErrNone : kHelErrRemoteFault;
			recv_error = error;
		} else {
			recv_.result_length = send_.length;
		}
		Reaper reaper;
		Node &send = send_, &recv = recv_;
		delete this;
		finish_node(send, send_error, reaper);
		finish_node(recv, recv_error, reaper);
	}

	Node &send_;
	Node &recv_;
};

// ---------------------------------------------------------------- results

void write_simple(const Node &node, ResultWriter &out) {
	HelSimpleResult r{node.error, 0};
	out.put(&r, sizeof(r));
}

void write_inline(const Node &node, ResultWriter &out) {
	HelInlineResultNoFlex r{node.error, 0, node.result_length};
	out.put(&r, sizeof(r));
	out.put(node.small.data(), node.result_length);
}

void write_length(const Node &node, ResultWriter &out) {
	HelLengthResult r{node.error, 0, node.result_length};
	out.put(&r, sizeof(r));
}

// ---------------------------------------------------------------- decoding

HelError decode_send(Thread &self, const HelAction &action, Node &node, ActionNeeds &needs) {
	node.length = action.length;
	node.user_buffer = action.buffer;
	// Up to 4 KiB is copied now, so the sender may reuse its buffer at once; larger sends are
	// read from the sender's buffer when they pair.
	if (action.length > kMaxBufferedSend) {
		needs.space = true;
		return kHelErrNone;
	}
	node.buffered = true;
	if (action.length > node.small.size() && !node.large.allocate(action.length))
		return kHelErrNoMemory;
	if (copy_from_user(self, const_cast<std::byte *>(node.data()), action.buffer, action.length) !=
			kHelErrNone)
		node.send_error = kHelErrFault;
	return kHelErrNone;
}

// Copies a SendFromBufferSg's data into the kernel. Both sizes come from user space and are
// allocated, so both are bounded (thor checks only that the sum does not overflow) and the
// allocations may fail without throwing. A list or data that cannot be read fails the send
// when it pairs; anything else refuses the whole submission.
HelError decode_send_sg(Thread &self, const HelAction &action, Node &node, ActionNeeds &) {
	node.buffered = true;
	std::size_t count = action.length;
	if (count > kMaxSgItems)
		return kHelErrIllegalArgs;
	// Most lists are a header and a body: no allocation for those.
	HelSgItem inline_items[8];
	std::unique_ptr<HelSgItem[]> heap_items;
	HelSgItem *items = inline_items;
	if (count > std::size(inline_items)) {
		heap_items.reset(new (std::nothrow) HelSgItem[count]);
		if (!heap_items)
			return kHelErrNoMemory;
		items = heap_items.get();
	}
	if (copy_from_user(self, items, action.buffer, count * sizeof(HelSgItem)) != kHelErrNone) {
		node.send_error = kHelErrFault;
		return kHelErrNone;
	}
	std::size_t total = 0;
	for (std::size_t i = 0; i < count; ++i) {
		if (items[i].length > kMaxSgBytes - total)
			return kHelErrIllegalArgs;
		total += items[i].length;
	}
	node.length = total;
	if (total > node.small.size() && !node.large.allocate(total))
		return kHelErrNoMemory;
	auto *out = const_cast<std::byte *>(node.data());
	for (std::size_t i = 0; i < count; ++i) {
		if (copy_from_user(self, out, items[i].buffer, items[i].length) != kHelErrNone) {
			node.send_error = kHelErrFault;
			break;
		}
		out += items[i].length;
	}
	return kHelErrNone;
}

void trace_send(sim::TraceRecorder &tracer, Thread &, const HelAction &, Node &node) {
	tracer.send(&node, node.length); // the send's flow starts here
}

HelError decode_recv_inline(Thread &, const HelAction &, Node &, ActionNeeds &) {
	return kHelErrNone;
}

HelError decode_recv_buffer(Thread &, const HelAction &action, Node &node, ActionNeeds &needs) {
	node.user_buffer = action.buffer;
	node.length = action.length;
	needs.space = true;
	return kHelErrNone;
}

// ---------------------------------------------------------------- pairing

// The checks every send/receive pair makes first; false when they finished both nodes.
bool transfer_allowed(Stream &stream, Node &send, Node &recv, std::size_t room, Reaper &reaper) {
	if (auto *tracer = stream.kernel().host().tracer()) [[unlikely]]
		tracer->pair(&send); // ends the send's flow on the thread that made the pair
	if (send.length > room) {
		finish_node(send, kHelErrBufferTooSmall, reaper);
		finish_node(recv, kHelErrBufferTooSmall, reaper);
		return false;
	}
	if (send.send_error != kHelErrNone) {
		finish_node(send, kHelErrFault, reaper);
		finish_node(recv, kHelErrRemoteFault, reaper);
		return false;
	}
	return true;
}

void pair_send_inline(Stream &stream, Node &send, Node &recv, Reaper &reaper) {
	// helsim also refuses a streamed (> 4 KiB) send into an inline receive, which thor's
	// length check lets through; see docs/fidelity.md.
	if (!transfer_allowed(stream, send, recv, kMaxInlineReceive, reaper))
		return;
	// Only buffered sends fit an inline receive: the data is in the kernel already.
	std::memcpy(recv.small.data(), send.data(), send.length);
	recv.result_length = send.length;
	finish_node(send, kHelErrNone, reaper);
	finish_node(recv, kHelErrNone, reaper);
}

void pair_send_buffer(Stream &stream, Node &send, Node &recv, Reaper &reaper) {
	if (!transfer_allowed(stream, send, recv, recv.length, reaper))
		return;
	if (send.buffered) {
		// The common case: every page of the receive buffer is present, so the copy needs
		// neither a fault nor an allocation.
		std::size_t done = 0;
		HelError e =
				copy_user(*recv.packet->space, reinterpret_cast<std::uintptr_t>(recv.user_buffer),
						const_cast<std::byte *>(send.data()), send.length, true, done, nullptr);
		if (e != kTouchPending) {
			if (e == kHelErrNone)
				recv.result_length = send.length;
			finish_node(send, kHelErrNone, reaper);
			finish_node(recv, e, reaper);
			return;
		}
	}
	Transfer::start(send, recv, reaper);
}

} // namespace

void deliver_buffered(Stream &stream, Node &send, Node &recv, Reaper &reaper) {
	const StreamActions &actions = stream.kernel().stream_actions();
	actions.pair_rule(kHelActionSendFromBuffer, recv.row->type().type)
			.run(stream, send, recv, reaper);
}

void register_transfer_actions(StreamActions &actions) {
	constexpr std::size_t kSimple = pad8(sizeof(HelSimpleResult));
	actions.add_type({kHelActionSendFromBuffer, "sendFromBuffer", 0, kSimple, write_simple,
			decode_send, trace_send, nullptr, nullptr});
	actions.add_type({kHelActionSendFromBufferSg, "sendFromBufferSg", 0, kSimple, write_simple,
			decode_send_sg, trace_send, nullptr, nullptr});
	actions.add_type({kHelActionRecvInline, "recvInline", 0,
			pad8(sizeof(HelInlineResultNoFlex) + kMaxInlineReceive), write_inline,
			decode_recv_inline, nullptr, nullptr, nullptr});
	actions.add_type({kHelActionRecvToBuffer, "recvToBuffer", 0, pad8(sizeof(HelLengthResult)),
			write_length, decode_recv_buffer, nullptr, nullptr, nullptr});
	for (int send : {kHelActionSendFromBuffer, kHelActionSendFromBufferSg}) {
		actions.add_pair(send, kHelActionRecvInline, pair_send_inline);
		actions.add_pair(send, kHelActionRecvToBuffer, pair_send_buffer);
	}
}

} // namespace helsim::kernel
