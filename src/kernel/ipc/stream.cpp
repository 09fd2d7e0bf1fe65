#include "kernel/ipc/stream.hpp"

#include <cstring>
#include <iterator>
#include <memory>
#include <new>

#include "kernel/memory/bounce_copy.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/core/token.hpp"
#include "kernel/memory/usercopy.hpp"

namespace helsim::kernel {

namespace {

thread_local Reaper *active_reaper = nullptr;

bool is_send(int type) {
	return type == kHelActionSendFromBuffer || type == kHelActionSendFromBufferSg;
}

// hel's names of the actions (kHelAction*), for the deadlock report.
const char *action_name(int type) {
	switch (type) {
	case kHelActionDismiss: return "dismiss";
	case kHelActionOffer: return "offer";
	case kHelActionAccept: return "accept";
	case kHelActionImbueCredentials: return "imbueCredentials";
	case kHelActionExtractCredentials: return "extractCredentials";
	case kHelActionSendFromBuffer: return "sendFromBuffer";
	case kHelActionSendFromBufferSg: return "sendFromBufferSg";
	case kHelActionRecvInline: return "recvInline";
	case kHelActionRecvToBuffer: return "recvToBuffer";
	case kHelActionPushDescriptor: return "pushDescriptor";
	case kHelActionPullDescriptor: return "pullDescriptor";
	default: return "unknown action";
	}
}

std::size_t result_size(int type) {
	switch (type) {
	case kHelActionOffer:
	case kHelActionAccept:
	case kHelActionPullDescriptor: return sizeof(HelHandleResult);
	case kHelActionExtractCredentials: return sizeof(HelCredentialsResult);
	case kHelActionRecvInline: return sizeof(HelInlineResultNoFlex) + kMaxInlineReceive;
	case kHelActionRecvToBuffer: return sizeof(HelLengthResult);
	default: return sizeof(HelSimpleResult);
	}
}

std::size_t element_size(const Packet &packet) {
	std::size_t total = 0;
	for (std::size_t i = 0; i < packet.count; ++i) {
		const Node &n = const_cast<Packet &>(packet).nodes()[i];
		total += n.type == kHelActionRecvInline
				? sizeof(HelInlineResultNoFlex) + pad8(n.result_length)
				: pad8(result_size(n.type));
	}
	return total;
}

void write_results(Packet &packet, std::byte *out) {
	auto put = [&](const void *p, std::size_t n) {
		std::memcpy(out, p, n);
		if (std::size_t pad = pad8(n) - n)
			std::memset(out + n, 0, pad);
		out += pad8(n);
	};
	for (std::size_t i = 0; i < packet.count; ++i) {
		const Node &n = packet.nodes()[i];
		switch (n.type) {
		case kHelActionOffer:
		case kHelActionAccept:
		case kHelActionPullDescriptor: {
			HelHandleResult r{n.error, 0, n.handle};
			put(&r, sizeof(r));
			break;
		}
		case kHelActionExtractCredentials: {
			HelCredentialsResult r{n.error, 0, {}};
			std::memcpy(r.credentials, n.credentials.data(), 16);
			put(&r, sizeof(r));
			break;
		}
		case kHelActionRecvInline: {
			HelInlineResultNoFlex r{n.error, 0, n.result_length};
			put(&r, sizeof(r));
			put(n.small.data(), n.result_length);
			break;
		}
		case kHelActionRecvToBuffer: {
			HelLengthResult r{n.error, 0, n.result_length};
			put(&r, sizeof(r));
			break;
		}
		default: {
			HelSimpleResult r{n.error, 0};
			put(&r, sizeof(r));
			break;
		}
		}
	}
}

void finish_packet(Packet &packet, Reaper &reaper) {
	// All results of the exchange form one element, in action order.
	std::size_t size = element_size(packet);
	alignas(8) std::byte local[512];
	std::unique_ptr<std::byte[]> large;
	std::byte *element = local;
	if (size > sizeof(local)) {
		large = std::make_unique<std::byte[]>(size);
		element = large.get();
	}
	write_results(packet, element);
	QueueSource source{element, size};
	packet.queue->post({&source, 1}, packet.context, true);
	reaper.add(&packet);
}

void finish_node(Node &node, HelError error, Reaper &reaper) {
	node.error = error;
	// Every node finishes exactly once, so the only node of a packet finishes it without the
	// locked decrement; nodes that may finish on different threads count down.
	Packet &packet = *node.packet;
	if (packet.count == 1 || packet.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
		finish_packet(packet, reaper);
}

// Fails a node together with its ancillary list, which then never reaches a child stream.
void fail_node(Node &node, HelError error, Reaper &reaper) {
	for (Node *child = node.first_child; child; child = child->next_sibling)
		fail_node(*child, error, reaper);
	finish_node(node, error, reaper);
}

// Attaches a descriptor in the universe of the node's submitter.
HelError attach_to_submitter(Node &node, Ref<Object> object, std::uint32_t rights) {
	Packet &packet = *node.packet;
	Universe *universe;
	{
		std::lock_guard lock{packet.universe_lock};
		if (!packet.universe)
			packet.universe = packet.anchor->lock();
		universe = packet.universe.get(); // stays set until the packet is freed
	}
	if (!universe)
		return kHelErrThreadTerminated; // the submitter's universe is gone
	return universe->attach(std::move(object), rights, node.handle);
}

// The credentials an imbue action carries: of a thread, a token or a stream.
HelError imbue_credentials(Thread &self, HelHandle handle, std::array<char, 16> &out) {
	if (handle == kHelThisThread) {
		out = self.credentials();
		return kHelErrNone;
	}
	Resolved r;
	if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone)
		return e;
	switch (r.object->kind()) {
	case ObjectKind::thread: out = static_cast<Thread *>(r.object.get())->credentials(); break;
	case ObjectKind::token: out = static_cast<Token *>(r.object.get())->credentials(); break;
	case ObjectKind::lane: {
		Stream &stream = static_cast<Lane *>(r.object.get())->stream();
		if (!stream.has_credentials())
			return kHelErrIllegalArgs;
		out = stream.credentials();
		break;
	}
	default: return kHelErrBadDescriptor;
	}
	return kHelErrNone;
}

// A send/receive copy that has to fault pages in (and may wait for a pager), or that streams
// a large send from the sender's memory. It finishes both nodes when done.
class Transfer final : public BounceCopy, public DeferredStart {
public:
	// Starts once the caller's stream locks are released (the nodes stay in flight until
	// done(), so nothing frees them meanwhile).
	static void start_after_locks(Node &send, Node &recv, Reaper &reaper) {
		CopyEndpoint source;
		if (send.buffered) {
			source.kernel = const_cast<std::byte *>(send.data());
		} else {
			source.space = send.packet->space;
			source.address = reinterpret_cast<std::uintptr_t>(send.user_buffer);
		}
		CopyEndpoint target{recv.packet->space, nullptr, nullptr,
				reinterpret_cast<std::uintptr_t>(recv.user_buffer)};
		reaper.defer(*new Transfer{send, recv, std::move(source), std::move(target)});
	}
	void start_deferred() override { BounceCopy::start(); }

	// Every send above kMaxBufferedSend bytes makes one: from the cache, not the heap.
	static void *operator new(std::size_t bytes) {
		if (void *memory = StreamCache::take(StreamCache::kTransfer, bytes))
			return memory;
		throw std::bad_alloc{};
	}
	static void operator delete(void *memory, std::size_t bytes) {
		StreamCache::give(memory, StreamCache::kTransfer, bytes);
	}

private:
	Transfer(Node &send, Node &recv, CopyEndpoint source, CopyEndpoint target)
	: BounceCopy{std::move(source), std::move(target), send.length}, send_{send}, recv_{recv} {}

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

} // namespace

Reaper::Reaper() : outer_{active_reaper} {
	if (!outer_)
		active_reaper = this;
}

Reaper::~Reaper() {
	if (outer_)
		return;
	// A deferred copy that completes at once finishes its packets into this reaper. Freeing
	// packets drops lane references; a lane that dies fails more packets, which land here
	// too. Keep going until nothing is left.
	for (;;) {
		if (DeferredStart *work = deferred_) {
			deferred_ = work->deferred_next;
			if (!deferred_)
				deferred_tail_ = nullptr;
			work->start_deferred(); // may delete `work`
		} else if (Packet *packet = packets_) {
			packets_ = packet->reap_next;
			Packet::destroy(packet);
		} else {
			break;
		}
	}
	active_reaper = nullptr;
}

void Reaper::add(Packet *packet) {
	Reaper &o = owner();
	packet->reap_next = o.packets_;
	o.packets_ = packet;
}

void Reaper::defer(DeferredStart &work) {
	Reaper &o = owner();
	work.deferred_next = nullptr;
	(o.deferred_tail_ ? o.deferred_tail_->deferred_next : o.deferred_) = &work;
	o.deferred_tail_ = &work;
}

// ---------------------------------------------------------------- lanes

Lane::Lane(Kernel &kernel, Stream &stream, int side)
: Object{kernel, ObjectKind::lane}, stream_{&stream}, side_{side} {}

Lane::~Lane() = default;

void Lane::for_each_reference(const std::function<void(Object &)> &f) { f(*stream_); }

void Lane::last_reference_dropped() {
	if (auto *tracer = kernel().host().tracer()) [[unlikely]]
		tracer->lane_event("lane break", side_);
	stream_->lane_dead(side_);
	delete this;
}

// ---------------------------------------------------------------- streams

Stream::Stream(Kernel &kernel) : Object{kernel, ObjectKind::stream} {}

void Stream::create(Kernel &kernel, bool with_credentials, Ref<Lane> &lane0, Ref<Lane> &lane1) {
	auto stream = Ref<Stream>::adopt(new Stream{kernel});
	if (with_credentials) {
		stream->has_credentials_ = true;
		kernel.random_bytes(stream->credentials_.data(), stream->credentials_.size());
	}
	lane0 = make_object<Lane>(kernel, *stream, 0);
	lane1 = make_object<Lane>(kernel, *stream, 1);
}

Node *Stream::take_queued(int side) {
	Node *queued = head_[side];
	head_[side] = tail_[side] = nullptr;
	return queued;
}

namespace {

// Fails a list taken off a lane's queue. The list's nodes are in no queue any more, so only
// this thread finishes them; their packets live until they are finished.
void fail_list(Node *list, HelError error, Reaper &reaper) {
	while (Node *node = list) {
		list = node->queue_next;
		node->queue_next = nullptr;
		fail_node(*node, error, reaper);
	}
}

} // namespace

void Stream::lane_dead(int side) {
	Reaper reaper;
	Node *waiting;
	{
		std::lock_guard lock{lock_};
		broken_[side] = true;
		waiting = take_queued(1 - side);
	}
	fail_list(waiting, kHelErrEndOfLane, reaper);
}

void Stream::abandon() {
	Reaper reaper;
	Node *waiting[2];
	{
		std::lock_guard lock{lock_};
		waiting[0] = take_queued(0);
		waiting[1] = take_queued(1);
	}
	fail_list(waiting[0], kHelErrEndOfLane, reaper);
	fail_list(waiting[1], kHelErrEndOfLane, reaper);
}

void Stream::for_each_pending(const std::function<void(const PendingOperation &)> &f) {
	std::lock_guard lock{lock_};
	for (Node *head : head_)
		for (Node *node = head; node; node = node->queue_next)
			f({node->packet->queue.get(), node->packet->context, action_name(node->type),
					node->lane});
}

void Stream::shutdown(int side) {
	if (auto *tracer = kernel().host().tracer()) [[unlikely]]
		tracer->lane_event("lane shutdown", side);
	Reaper reaper;
	Node *own, *peer;
	{
		std::lock_guard lock{lock_};
		shut_down_[side] = true;
		own = take_queued(side);
		peer = take_queued(1 - side);
	}
	fail_list(own, kHelErrLaneShutdown, reaper);
	fail_list(peer, kHelErrEndOfLane, reaper);
}

void Stream::submit(Lane &lane, Node *first, Reaper &reaper) {
	// Before the lock: nothing else knows these nodes yet. One reference keeps the lane alive
	// while any item of the list is in flight.
	first->list_lane = Ref<Lane>{&lane};
	for (Node *node = first; node; node = node->next_sibling)
		node->lane = &lane;

	// Under the lock, only who meets whom is decided (thor's "as little work as possible
	// while holding the lock"): (1) each node either fails, pairs with the head of the peer's
	// queue, or is queued; (2) failures and pairs go on a worklist, linked through queue_next,
	// in order; (3) after the lock, the worklist runs: object creation, copies, completions.
	// A worklist node is in no queue, so a shutdown or a lane breaking meanwhile cannot reach
	// it: it finishes here, once, and its packet stays alive until it has.
	int side = lane.side();
	int peer = 1 - side;
	Node *work = nullptr;
	Node **work_tail = &work;
	{
		std::lock_guard lock{lock_};
		// A queued node may pair on another thread once the lock is released, but not before:
		// reading next_sibling after queueing is safe.
		for (Node *node = first; node; node = node->next_sibling) {
			if (shut_down_[side]) {
				node->error = kHelErrLaneShutdown;
			} else if (broken_[peer] || shut_down_[peer]) {
				node->error = kHelErrEndOfLane;
			} else if (Node *other = head_[peer]) {
				// Items pair strictly in order with the head of the other lane's queue.
				head_[peer] = other->queue_next;
				if (!head_[peer])
					tail_[peer] = nullptr;
				other->queue_next = nullptr;
				node->partner = other;
			} else {
				(tail_[side] ? tail_[side]->queue_next : head_[side]) = node;
				tail_[side] = node;
				continue;
			}
			*work_tail = node;
			work_tail = &node->queue_next;
		}
	}
	while (Node *node = work) {
		work = node->queue_next;
		node->queue_next = nullptr;
		if (Node *other = node->partner) {
			node->partner = nullptr;
			pair(*node, *other, reaper);
		} else {
			fail_node(*node, node->error, reaper);
		}
	}
}

void Stream::pair(Node &a, Node &b, Reaper &reaper) {
	// Dismiss cancels both sides; the dismisser succeeds unless both dismissed.
	if (a.type == kHelActionDismiss || b.type == kHelActionDismiss) {
		bool both = a.type == b.type;
		fail_node(a, a.type == kHelActionDismiss && !both ? kHelErrNone : kHelErrDismissed, reaper);
		fail_node(b, b.type == kHelActionDismiss && !both ? kHelErrNone : kHelErrDismissed, reaper);
		return;
	}
	auto order = [&](int first_type) -> std::pair<Node &, Node &> {
		if (a.type == first_type)
			return {a, b};
		return {b, a};
	};

	if ((a.type == kHelActionOffer && b.type == kHelActionAccept) ||
			(a.type == kHelActionAccept && b.type == kHelActionOffer)) {
		auto [offer, accept] = order(kHelActionOffer);
		Ref<Lane> child0, child1;
		Stream::create(kernel(), false, child0, child1);
		HelError offer_error = kHelErrNone;
		if (offer.flags & kHelItemWantLane)
			offer_error = attach_to_submitter(offer, child0, kLaneDefaultRights);
		HelError accept_error = attach_to_submitter(accept, child1, kLaneDefaultRights);
		// Each ancillary list continues on its end of the new stream, in order.
		Stream &child = child0->stream();
		if (offer.first_child)
			child.submit(*child0, offer.first_child, reaper);
		if (accept.first_child)
			child.submit(*child1, accept.first_child, reaper);
		finish_node(offer, offer_error, reaper);
		finish_node(accept, accept_error, reaper);
		return; // child0/child1 drop here; a lane nobody holds breaks at once
	}

	if ((a.type == kHelActionImbueCredentials && b.type == kHelActionExtractCredentials) ||
			(a.type == kHelActionExtractCredentials && b.type == kHelActionImbueCredentials)) {
		auto [imbue, extract] = order(kHelActionImbueCredentials);
		extract.credentials = imbue.credentials;
		finish_node(imbue, kHelErrNone, reaper);
		finish_node(extract, kHelErrNone, reaper);
		return;
	}

	if ((a.type == kHelActionPushDescriptor && b.type == kHelActionPullDescriptor) ||
			(a.type == kHelActionPullDescriptor && b.type == kHelActionPushDescriptor)) {
		auto [push, pull] = order(kHelActionPushDescriptor);
		std::uint32_t rights = push.pushed.rights;
		HelError pull_error = kHelErrBadRights;
		if ((rights & pull.rights) == pull.rights)
			pull_error = attach_to_submitter(pull, push.pushed.object, rights);
		// Ends the push's flow. A successful attach set packet->universe on this thread (under
		// its lock), and it never changes after.
		if (auto *tracer = kernel().host().tracer()) [[unlikely]]
			tracer->pull_descriptor(&push, pull.trace_track, pull_error ? 0 : pull.handle,
					pull_error ? 0 : pull.packet->universe->id(), pull_error);
		finish_node(push, kHelErrNone, reaper);
		finish_node(pull, pull_error, reaper);
		return;
	}

	if ((is_send(a.type) && (b.type == kHelActionRecvInline || b.type == kHelActionRecvToBuffer)) ||
			(is_send(b.type) &&
					(a.type == kHelActionRecvInline || a.type == kHelActionRecvToBuffer))) {
		Node &send = is_send(a.type) ? a : b;
		Node &recv = is_send(a.type) ? b : a;
		if (auto *tracer = kernel().host().tracer()) [[unlikely]]
			tracer->pair(&send); // ends the send's flow on the thread that made the pair
		std::size_t length = send.length;
		std::size_t room = recv.type == kHelActionRecvInline ? kMaxInlineReceive : recv.length;
		// helsim also refuses a streamed (> 4 KiB) send into an inline receive, which thor's
		// length check lets through; see docs/fidelity.md.
		if (length > room) {
			finish_node(send, kHelErrBufferTooSmall, reaper);
			finish_node(recv, kHelErrBufferTooSmall, reaper);
			return;
		}
		if (send.send_error != kHelErrNone) {
			finish_node(send, kHelErrFault, reaper);
			finish_node(recv, kHelErrRemoteFault, reaper);
			return;
		}
		if (recv.type == kHelActionRecvInline) {
			// Only buffered sends fit an inline receive: the data is in the kernel already.
			std::memcpy(recv.small.data(), send.data(), length);
			recv.result_length = length;
			finish_node(send, kHelErrNone, reaper);
			finish_node(recv, kHelErrNone, reaper);
			return;
		}
		if (send.buffered) {
			// The common case: every page of the receive buffer is present, so the copy
			// needs neither a fault nor an allocation.
			std::size_t done = 0;
			HelError e = copy_user(*recv.packet->space,
					reinterpret_cast<std::uintptr_t>(recv.user_buffer),
					const_cast<std::byte *>(send.data()), length, true, done, nullptr);
			if (e != kTouchPending) {
				if (e == kHelErrNone)
					recv.result_length = length;
				finish_node(send, kHelErrNone, reaper);
				finish_node(recv, e, reaper);
				return;
			}
		}
		Transfer::start_after_locks(send, recv, reaper);
		return;
	}

	// Anything else is a protocol mismatch. Unlike thor, helsim also fails the ancillary
	// lists of a mismatched offer or accept, so the exchange completes; docs/fidelity.md.
	fail_node(a, kHelErrTransmissionMismatch, reaper);
	fail_node(b, kHelErrTransmissionMismatch, reaper);
}

// ---------------------------------------------------------------- submission

namespace {

// Copies a SendFromBufferSg's data into the kernel. Both sizes come from user space and are
// allocated, so both are bounded (thor checks only that the sum does not overflow) and the
// allocations may fail without throwing. A list or data that cannot be read fails the send
// when it pairs; anything else refuses the whole submission.
HelError capture_sg(Thread &self, const HelAction &action, Node &node) {
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

} // namespace

HelError submit_exchange(Thread &self, Lane &lane, std::span<const HelAction> actions,
		IpcQueue &queue, std::uintptr_t context) {
	if (actions.empty())
		return kHelErrIllegalArgs;
	std::unique_ptr<Packet, Packet::Deleter> packet{Packet::create(actions.size())};

	// The item tree: a stack of open lists, starting with the root list. An item belongs to
	// the list on top; without kHelItemChain it closes that list; with kHelItemAncillary it
	// opens its own. Every list must be closed at the end.
	// The open stack is linked through open_below; the root list is the bottom entry,
	// represented by `root_open`.
	bool root_open = true;
	Node *open = nullptr; // innermost open ancillary list, or nullptr for the root list
	std::size_t result_bytes = 0;
	bool uses_space = false, attaches = false;
	constexpr std::uint32_t kKnownFlags = kHelItemChain | kHelItemAncillary | kHelItemWantLane;
	for (std::size_t i = 0; i < actions.size(); ++i) {
		const HelAction &action = actions[i];
		Node &node = packet->nodes()[i];
		node.packet = packet.get();
		node.type = action.type;
		node.flags = action.flags;
		if ((!open && !root_open) || (action.flags & ~kKnownFlags))
			return kHelErrIllegalArgs;
		bool offer_or_accept = action.type == kHelActionOffer || action.type == kHelActionAccept;
		if ((action.flags & kHelItemAncillary) && !offer_or_accept)
			return kHelErrIllegalArgs;
		if ((action.flags & kHelItemWantLane) && action.type != kHelActionOffer)
			return kHelErrIllegalArgs;
		switch (action.type) {
		case kHelActionDismiss:
		case kHelActionExtractCredentials:
		case kHelActionRecvInline: break;
		case kHelActionOffer:
		case kHelActionAccept: attaches = true; break;
		case kHelActionRecvToBuffer:
			node.user_buffer = action.buffer;
			node.length = action.length;
			uses_space = true;
			break;
		case kHelActionSendFromBuffer:
			node.length = action.length;
			node.user_buffer = action.buffer;
			// Up to 4 KiB is copied now, so the sender may reuse its buffer at once; larger
			// sends are read from the sender's buffer when they pair.
			if (action.length <= kMaxBufferedSend) {
				node.buffered = true;
				if (action.length > node.small.size() && !node.large.allocate(action.length))
					return kHelErrNoMemory;
				if (copy_from_user(self, const_cast<std::byte *>(node.data()), action.buffer,
							action.length) != kHelErrNone)
					node.send_error = kHelErrFault;
			} else {
				uses_space = true;
			}
			break;
		case kHelActionSendFromBufferSg:
			if (HelError e = capture_sg(self, action, node); e != kHelErrNone)
				return e;
			break;
		case kHelActionPushDescriptor: {
			if (HelError e = self.universe().lookup(action.handle, node.pushed); e != kHelErrNone)
				return e;
			node.pushed.rights &= action.rights; // the exposed mask
			break;
		}
		case kHelActionPullDescriptor:
			node.rights = action.rights;
			attaches = true;
			break;
		case kHelActionImbueCredentials:
			if (HelError e = imbue_credentials(self, action.handle, node.credentials);
					e != kHelErrNone)
				return e;
			break;
		default: return kHelErrIllegalArgs;
		}
		result_bytes += pad8(result_size(action.type));

		Node *parent = open;
		node.parent = parent;
		if (parent) {
			(parent->last_child ? parent->last_child->next_sibling : parent->first_child) = &node;
			parent->last_child = &node;
		} else {
			(packet->last_root ? packet->last_root->next_sibling : packet->first_root) = &node;
			packet->last_root = &node;
		}
		if (!(action.flags & kHelItemChain)) {
			if (open)
				open = open->open_below;
			else
				root_open = false;
		}
		if (action.flags & kHelItemAncillary) {
			node.open_below = open;
			open = &node;
		}
	}
	if (open || root_open)
		return kHelErrIllegalArgs;
	if (!queue.fits(result_bytes))
		return kHelErrQueueTooSmall;

	packet->queue = Ref<IpcQueue>{&queue};
	if (uses_space)
		packet->space = self.space_ref();
	packet->context = context;
	if (attaches)
		packet->anchor = self.universe().anchor();
	packet->remaining.store(actions.size(), std::memory_order_relaxed);
	self.note_submitted();
	if (auto *tracer = self.tracer()) [[unlikely]]
		for (std::size_t i = 0; i < actions.size(); ++i) { // send and push flows start here
			Node &node = packet->nodes()[i];
			if (is_send(node.type))
				tracer->send(&node, node.length);
			else if (node.type == kHelActionPushDescriptor)
				tracer->push_descriptor(&node, node.pushed.object->kind_name(),
						actions[i].handle, self.universe().id(), node.pushed.rights);
			else if (node.type == kHelActionPullDescriptor)
				node.trace_track = tracer->track_id(self);
		}
	Reaper reaper;
	Node *roots = packet->first_root;
	(void)packet.release(); // from here on the packet frees itself once its completion is posted
	lane.stream().submit(lane, roots, reaper);
	return kHelErrNone;
}

} // namespace helsim::kernel
