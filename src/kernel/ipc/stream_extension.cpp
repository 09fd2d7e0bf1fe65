// The stream-action part of helsim/extension_kernel.hpp: an extension's action type becomes a row
// of the kernel's registry whose decode and pair functions call the extension's.
#include <cstring>
#include <stdexcept>

#include <helsim/extension_kernel.hpp>

#include "kernel/core/kernel.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_extension.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/memory/memory_view.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::ext {

using kernel::Node;

int StreamItem::type() const { return node_.row->type().type; }

std::uint32_t StreamItem::flags() const { return node_.flags; }

HelError StreamItem::capture(Caller &caller, const void *user_buffer, std::size_t size) {
	return capture(caller, user_buffer, size, 0);
}

HelError StreamItem::capture(Caller &caller, const void *user_buffer, std::size_t size,
		std::size_t headroom) {
	if (node_.length || node_.large)
		return kHelErrIllegalState; // captured already
	if (size > kMaxCapture || headroom > kMaxCapture - size)
		return kHelErrIllegalArgs;
	std::size_t length = headroom + size;
	if (length > node_.small.size() && !node_.large.allocate(length))
		return kHelErrNoMemory;
	node_.length = length;
	auto *kernel_data = const_cast<std::byte *>(node_.data());
	std::memset(kernel_data, 0, headroom);
	HelError e = kernel::copy_from_user(caller.thread(), kernel_data + headroom, user_buffer, size);
	if (e != kHelErrNone)
		node_.send_error = kHelErrFault; // deliver() fails both sides as for a faulting send
	return e;
}

std::span<std::byte> StreamItem::data() {
	return {const_cast<std::byte *>(node_.data()), node_.length};
}

void StreamItem::set_result_length(std::size_t length) { node_.result_length = length; }

HelError StreamItem::capture_descriptor(Caller &caller, HelHandle handle,
		std::uint32_t required_rights, std::uint32_t rights_mask) {
	if (node_.pushed.object)
		return kHelErrIllegalState; // captured already
	return kernel::capture_pushed(caller.thread(), handle, required_rights, rights_mask, node_);
}

HelError StreamItem::capture_pages(Caller &caller, HelHandle memory, std::size_t offset,
		std::size_t size, std::uint32_t rights_mask) {
	if (!size || size > kMaxCapture || offset % sim::kPageSize || size % sim::kPageSize)
		return kHelErrIllegalArgs;
	kernel::Resolved r;
	if (HelError e = caller.thread().universe().lookup(memory, r); e != kHelErrNone)
		return e;
	auto *view = r.object->kind() == kernel::ObjectKind::memory_view
			? static_cast<kernel::MemoryView *>(r.object.get())
			: nullptr;
	if (!view)
		return r.object->kind() == kernel::ObjectKind::memory_slice ? kHelErrUnsupportedOperation
																	: kHelErrBadDescriptor;
	if (!view->pages_movable())
		return kHelErrUnsupportedOperation;
	constexpr std::uint32_t kNeeded = kHelRightRead | kHelRightWrite;
	if ((r.rights & kNeeded) != kNeeded)
		return kHelErrBadRights;
	if (offset > view->size() || size > view->size() - offset)
		return kHelErrOutOfBounds; // memory only grows: still inside when it pairs
	if (node_.pushed.object)
		return kHelErrIllegalState; // captured already
	r.rights &= rights_mask;
	node_.pushed = std::move(r);
	node_.pages_offset = offset;
	node_.pages_size = size;
	return kHelErrNone;
}

std::uint64_t StreamPair::now() const { return stream_.kernel().host().now(); }

void StreamPair::finish(StreamItem item, HelError error) {
	kernel::finish_node(item.node(), error, reaper_);
}

void StreamPair::deliver(StreamItem from, StreamItem to) {
	kernel::deliver_buffered(stream_, from.node(), to.node(), reaper_);
}

namespace {

void write_handle(const Node &node, kernel::ResultWriter &out) {
	HelHandleResult r{node.error, 0, node.handle};
	out.put(&r, sizeof(r));
}

// An extension item that takes a handle as a pullDescriptor does.
bool pulls(const Node &node) { return node.row->type().write_result == write_handle; }

} // namespace

void StreamPair::hand_over(StreamItem from, StreamItem to) {
	Node &push = from.node(), &pull = to.node();
	if (!push.pushed.object) {
		finish(from, kHelErrIllegalState);
		finish(to, kHelErrIllegalState);
		return;
	}
	if (!pulls(pull) && pull.row->type().type != kHelActionPullDescriptor) {
		stream_.kernel()
				.stream_actions()
				.pair_rule(kHelActionPushDescriptor, pull.row->type().type)
				.run(stream_, push, pull, reaper_);
		return;
	}
	if (push.pages_size && kernel::pull_accepts(push, pull)) {
		kernel::Ref<kernel::MemoryView> moved;
		auto &view = static_cast<kernel::MemoryView &>(*push.pushed.object);
		if (HelError e = view.take_pages(push.pages_offset, push.pages_size, moved);
				e != kHelErrNone) {
			finish(from, e);
			finish(to, e);
			return;
		}
		push.pushed.object = std::move(moved);
	}
	kernel::pair_descriptor(stream_, push, pull, reaper_);
}

namespace {

HelError decode_extension(kernel::Thread &self, const HelAction &action, Node &node,
		kernel::ActionNeeds &needs) {
	// Every extension item carries kernel data, empty until it captures some: deliver()
	// never reads a sender's memory after the submission.
	node.buffered = true;
	if (pulls(node))
		needs.universe = true; // hand_over attaches into the submitter's universe
	Caller caller{self};
	return node.row->type().extension_decode(caller, action, StreamItem{node});
}

void pair_extension(kernel::Stream &stream, Node &first, Node &second, kernel::Reaper &reaper) {
	StreamPair pair{stream, first, second, reaper};
	first.row->pair_rule(*second.row).extension_pair(pair);
}

void write_simple(const Node &node, kernel::ResultWriter &out) {
	HelSimpleResult r{node.error, 0};
	out.put(&r, sizeof(r));
}

void write_length(const Node &node, kernel::ResultWriter &out) {
	HelLengthResult r{node.error, 0, node.result_length};
	out.put(&r, sizeof(r));
}

} // namespace

} // namespace helsim::ext

namespace helsim::kernel {

void add_stream_action(Kernel &kernel, int type, const char *name, ext::StreamResult result,
		ext::StreamDecodeFunction decode) {
	if (type < ext::kFirstExtensionAction ||
			type >= ext::kFirstExtensionAction + ext::kExtensionActionCount)
		throw std::invalid_argument("helsim: extension stream actions are numbered from "
									"kFirstExtensionAction, kExtensionActionCount of them");
	if (!decode)
		throw std::invalid_argument("helsim: an extension stream action without a decode");
	ActionType row{type, name, 0, 0, nullptr, ext::decode_extension, nullptr, nullptr, decode};
	switch (result) {
	case ext::StreamResult::simple:
		row.max_result_size = pad8(sizeof(HelSimpleResult));
		row.write_result = ext::write_simple;
		break;
	case ext::StreamResult::length:
		row.max_result_size = pad8(sizeof(HelLengthResult));
		row.write_result = ext::write_length;
		break;
	case ext::StreamResult::handle:
		row.max_result_size = pad8(sizeof(HelHandleResult));
		row.write_result = ext::write_handle;
		break;
	default: throw std::invalid_argument("helsim: an unknown StreamResult");
	}
	kernel.stream_actions().add_type(row);
}

void add_stream_pair(Kernel &kernel, int first, int second, ext::StreamPairFunction pair) {
	if (!pair)
		throw std::invalid_argument("helsim: an extension stream pair without a function");
	kernel.stream_actions().add_pair(first, second, ext::pair_extension, pair);
}

} // namespace helsim::kernel
