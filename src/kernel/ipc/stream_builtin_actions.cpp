// Managarm's stream actions as rows of the registry: dismiss, offer/accept, imbue/extract
// credentials, push/pull descriptor. Send and receive are in stream_transfer_actions.cpp.
#include <array>
#include <cstring>

#include "kernel/core/allocation_errors.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/token.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

namespace {

// ---------------------------------------------------------------- results

void write_simple(const Node &node, ResultWriter &out) {
	HelSimpleResult r{node.error, 0};
	out.put(&r, sizeof(r));
}

void write_handle(const Node &node, ResultWriter &out) {
	HelHandleResult r{node.error, 0, node.handle};
	out.put(&r, sizeof(r));
}

void write_credentials(const Node &node, ResultWriter &out) {
	HelCredentialsResult r{node.error, 0, {}};
	std::memcpy(r.credentials, node.credentials.data(), sizeof(r.credentials));
	out.put(&r, sizeof(r));
}

// ---------------------------------------------------------------- dismiss

HelError decode_nothing(Thread &, const HelAction &, Node &, ActionNeeds &) { return kHelErrNone; }

// Dismiss cancels both sides; the dismisser succeeds unless both dismissed. A rule that pairs
// with any action takes the nodes in the order they met, so the two completions post in the
// order they did before the registry.
HelError dismissed(const Node &node, const Node &other) {
	bool dismisser = node.row->type().type == kHelActionDismiss;
	return dismisser && other.row != node.row ? kHelErrNone : kHelErrDismissed;
}

void pair_dismiss(Stream &, Node &a, Node &b, Reaper &reaper) {
	HelError a_error = dismissed(a, b), b_error = dismissed(b, a);
	fail_node(a, a_error, reaper);
	fail_node(b, b_error, reaper);
}

// ---------------------------------------------------------------- offer / accept

HelError decode_offer_accept(Thread &, const HelAction &, Node &, ActionNeeds &needs) {
	needs.universe = true;
	return kHelErrNone;
}

void pair_offer_accept(Stream &stream, Node &offer, Node &accept, Reaper &reaper) {
	Ref<Lane> child0, child1;
	// Both sides were accepted long before they met: a stream that cannot be made fails them
	// (and their ancillary lists), as the failed allocation would in the real kernel.
	if (HelError e = without_allocation_exceptions([&] {
			Stream::create(stream.kernel(), false, child0, child1);
			return kHelErrNone;
		});
			e != kHelErrNone) {
		fail_node(offer, e, reaper);
		fail_node(accept, e, reaper);
		return;
	}
	HelError offer_error = kHelErrNone;
	if (offer.flags & kHelItemWantLane)
		offer_error = attach_to_submitter(offer, child0, kLaneDefaultRights);
	HelError accept_error = attach_to_submitter(accept, child1, kLaneDefaultRights);
	// Each ancillary list continues on its end of the new stream, in order.
	Stream &child = child0->stream();
	if (offer.first_child)
		child.submit(child0.release(), offer.first_child, reaper);
	if (accept.first_child)
		child.submit(child1.release(), accept.first_child, reaper);
	finish_node(offer, offer_error, reaper);
	finish_node(accept, accept_error, reaper);
	// A lane no list took drops here; a lane nobody holds breaks at once
}

// ---------------------------------------------------------------- credentials

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

HelError decode_imbue(Thread &self, const HelAction &action, Node &node, ActionNeeds &) {
	return imbue_credentials(self, action.handle, node.credentials);
}

void pair_credentials(Stream &, Node &imbue, Node &extract, Reaper &reaper) {
	extract.credentials = imbue.credentials;
	finish_node(imbue, kHelErrNone, reaper);
	finish_node(extract, kHelErrNone, reaper);
}

// ---------------------------------------------------------------- push / pull descriptor

HelError decode_push(Thread &self, const HelAction &action, Node &node, ActionNeeds &) {
	return capture_pushed(self, action.handle, 0, action.rights, node);
}

void trace_push(sim::TraceRecorder &tracer, Thread &self, const HelAction &action, Node &node) {
	tracer.push_descriptor(&node, node.pushed.object->kind_name(), action.handle,
			self.universe().id(), node.pushed.rights);
}

HelError decode_pull(Thread &, const HelAction &action, Node &node, ActionNeeds &needs) {
	node.rights = action.rights;
	needs.universe = true;
	return kHelErrNone;
}

void trace_pull(sim::TraceRecorder &tracer, Thread &self, const HelAction &, Node &node) {
	node.trace_track = tracer.track_id(self);
}

} // namespace

HelError capture_pushed(Thread &self, HelHandle handle, std::uint32_t required,
		std::uint32_t exposed, Node &node) {
	Resolved r;
	if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone)
		return e;
	if ((r.rights & required) != required)
		return kHelErrBadRights;
	r.rights &= exposed;
	node.pushed = std::move(r);
	return kHelErrNone;
}

bool pull_accepts(const Node &push, const Node &pull) {
	return (push.pushed.rights & pull.rights) == pull.rights;
}

void pair_descriptor(Stream &stream, Node &push, Node &pull, Reaper &reaper) {
	std::uint32_t rights = push.pushed.rights;
	HelError pull_error = kHelErrBadRights;
	if (pull_accepts(push, pull))
		pull_error = attach_to_submitter(pull, push.pushed.object, rights);
	// Ends the push's flow. A successful attach set packet->universe on this thread (under
	// its lock), and it never changes after.
	if (auto *tracer = stream.kernel().host().tracer()) [[unlikely]]
		tracer->pull_descriptor(&push, pull.trace_track, pull_error ? 0 : pull.handle,
				pull_error ? 0 : pull.packet->universe->id(), pull_error);
	finish_node(push, kHelErrNone, reaper);
	finish_node(pull, pull_error, reaper);
}

namespace {

constexpr std::size_t kSimple = sizeof(HelSimpleResult);
constexpr std::size_t kHandle = sizeof(HelHandleResult);

} // namespace

void register_builtin_actions(StreamActions &actions) {
	actions.add_type({kHelActionDismiss, "dismiss", 0, pad8(kSimple), write_simple, decode_nothing,
			nullptr, pair_dismiss, nullptr});
	actions.add_type({kHelActionOffer, "offer", kHelItemAncillary | kHelItemWantLane, pad8(kHandle),
			write_handle, decode_offer_accept, nullptr, nullptr, nullptr});
	actions.add_type({kHelActionAccept, "accept", kHelItemAncillary, pad8(kHandle), write_handle,
			decode_offer_accept, nullptr, nullptr, nullptr});
	actions.add_type({kHelActionImbueCredentials, "imbueCredentials", 0, pad8(kSimple),
			write_simple, decode_imbue, nullptr, nullptr, nullptr});
	actions.add_type({kHelActionExtractCredentials, "extractCredentials", 0,
			pad8(sizeof(HelCredentialsResult)), write_credentials, decode_nothing, nullptr, nullptr,
			nullptr});
	actions.add_type({kHelActionPushDescriptor, "pushDescriptor", 0, pad8(kSimple), write_simple,
			decode_push, trace_push, nullptr, nullptr});
	actions.add_type({kHelActionPullDescriptor, "pullDescriptor", 0, pad8(kHandle), write_handle,
			decode_pull, trace_pull, nullptr, nullptr});
	register_transfer_actions(actions);

	actions.add_pair(kHelActionOffer, kHelActionAccept, pair_offer_accept);
	actions.add_pair(kHelActionImbueCredentials, kHelActionExtractCredentials, pair_credentials);
	actions.add_pair(kHelActionPushDescriptor, kHelActionPullDescriptor, pair_descriptor);
}

} // namespace helsim::kernel
