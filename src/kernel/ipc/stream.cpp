#include "kernel/ipc/stream.hpp"

#include <memory>

#include "kernel/core/kernel.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

namespace {

thread_local Reaper *active_reaper = nullptr;

// Writes every result of the exchange, in action order; returns the element's size.
std::size_t write_results(Packet &packet, std::byte *element) {
	ResultWriter writer{element};
	for (std::size_t i = 0; i < packet.count; ++i) {
		const Node &n = packet.nodes()[i];
		n.row->type().write_result(n, writer);
	}
	return static_cast<std::size_t>(writer.position() - element);
}

void finish_packet(Packet &packet, Reaper &reaper) {
	// All results of the exchange form one element, in action order. Its size is bounded at
	// submission, so one pass writes it.
	alignas(8) std::byte local[512];
	std::unique_ptr<std::byte[]> large;
	std::byte *element = local;
	if (packet.max_result_bytes > sizeof(local)) {
		large = std::make_unique<std::byte[]>(packet.max_result_bytes);
		element = large.get();
	}
	std::size_t size = write_results(packet, element);
	QueueSource source{element, size};
	packet.queue->post({&source, 1}, packet.context, true);
	reaper.add(&packet);
}

} // namespace

void finish_node(Node &node, HelError error, Reaper &reaper) {
	node.error = error;
	// Every node finishes exactly once, so the only node of a packet finishes it without the
	// locked decrement; nodes that may finish on different threads count down.
	Packet &packet = *node.packet;
	if (packet.count == 1 || packet.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
		finish_packet(packet, reaper);
}

void fail_node(Node &node, HelError error, Reaper &reaper) {
	for (Node *child = node.first_child; child; child = child->next_sibling)
		fail_node(*child, error, reaper);
	finish_node(node, error, reaper);
}

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
	auto stream = make_object<Stream>(kernel);
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
			f({node->packet->queue.get(), node->packet->context, node->row->type().name,
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

void Stream::submit(Lane *lane, Node *first, Reaper &reaper) {
	// Before the lock: nothing else knows these nodes yet. One reference keeps the lane alive
	// while any item of the list is in flight.
	first->list_lane = Ref<Lane>::adopt(lane);
	for (Node *node = first; node; node = node->next_sibling)
		node->lane = lane;

	// Under the lock, only who meets whom is decided (thor's "as little work as possible
	// while holding the lock"): (1) each node either fails, pairs with the head of the peer's
	// queue, or is queued; (2) failures and pairs go on a worklist, linked through queue_next,
	// in order; (3) after the lock, the worklist runs: object creation, copies, completions.
	// A worklist node is in no queue, so a shutdown or a lane breaking meanwhile cannot reach
	// it: it finishes here, once, and its packet stays alive until it has.
	int side = lane->side();
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
	a.row->pair_rule(*b.row).run(*this, a, b, reaper);
}

// ---------------------------------------------------------------- submission

HelError submit_exchange(Thread &self, Lane *adopted_lane, std::span<const HelAction> actions,
		IpcQueue &queue, std::uintptr_t context) {
	auto lane = Ref<Lane>::adopt(adopted_lane);
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
	ActionNeeds needs;
	const StreamActions &registry = self.kernel().stream_actions();
	for (std::size_t i = 0; i < actions.size(); ++i) {
		const HelAction &action = actions[i];
		Node &node = packet->nodes()[i];
		const ActionRow *row = registry.row(action.type);
		if (!row)
			return kHelErrIllegalArgs;
		node.packet = packet.get();
		node.row = row;
		node.flags = action.flags;
		if ((!open && !root_open) || (action.flags & ~(kHelItemChain | row->type().item_flags)))
			return kHelErrIllegalArgs;
		if (HelError e = row->type().decode(self, action, node, needs); e != kHelErrNone)
			return e;
		result_bytes += row->type().max_result_size;

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
	if (needs.space)
		packet->space = self.space_ref();
	packet->context = context;
	packet->max_result_bytes = result_bytes;
	if (needs.universe)
		packet->anchor = self.universe().anchor();
	packet->remaining.store(actions.size(), std::memory_order_relaxed);
	self.note_submitted();
	if (auto *tracer = self.tracer()) [[unlikely]]
		for (std::size_t i = 0; i < actions.size(); ++i) {
			Node &node = packet->nodes()[i];
			if (auto trace = node.row->type().trace_submit)
				trace(*tracer, self, actions[i], node);
		}
	Reaper reaper;
	Node *roots = packet->first_root;
	(void)packet.release(); // from here on the packet frees itself once its completion is posted
	lane->stream().submit(lane.release(), roots, reaper);
	return kHelErrNone;
}

} // namespace helsim::kernel
