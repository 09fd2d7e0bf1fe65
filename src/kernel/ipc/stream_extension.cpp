// The stream-action part of helsim/extension_kernel.hpp: an extension's action type becomes a row
// of the kernel's registry whose decode and pair functions call the extension's.
#include <cstring>
#include <stdexcept>

#include <helsim/extension_kernel.hpp>

#include "kernel/core/kernel.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_extension.hpp"
#include "kernel/ipc/stream_packet.hpp"
#include "kernel/memory/usercopy.hpp"

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

std::uint64_t StreamPair::now() const { return stream_.kernel().host().now(); }

void StreamPair::finish(StreamItem item, HelError error) {
	kernel::finish_node(item.node(), error, reaper_);
}

void StreamPair::deliver(StreamItem from, StreamItem to) {
	kernel::deliver_buffered(stream_, from.node(), to.node(), reaper_);
}

namespace {

HelError decode_extension(kernel::Thread &self, const HelAction &action, Node &node,
		kernel::ActionNeeds &) {
	// Every extension item carries kernel data, empty until it captures some: deliver()
	// never reads a sender's memory after the submission.
	node.buffered = true;
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
	bool length = result == ext::StreamResult::length;
	ActionType row{type, name, 0, pad8(length ? sizeof(HelLengthResult) : sizeof(HelSimpleResult)),
			length ? ext::write_length : ext::write_simple, ext::decode_extension, nullptr, nullptr,
			decode};
	kernel.stream_actions().add_type(row);
}

void add_stream_pair(Kernel &kernel, int first, int second, ext::StreamPairFunction pair) {
	if (!pair)
		throw std::invalid_argument("helsim: an extension stream pair without a function");
	kernel.stream_actions().add_pair(first, second, ext::pair_extension, pair);
}

} // namespace helsim::kernel
