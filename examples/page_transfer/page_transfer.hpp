// page_transfer: a zero-copy page-transfer send, prototyped with helsim/extension.hpp
// (docs/extending.md, "Handles and pages").
//
// sendPages names a memory object (helAllocateMemory, not continuous) and a page-aligned range
// of it. When a receive meets it, the kernel moves the frames behind that range into a new
// memory object, and the receive gets a handle to that object: the built-in pullDescriptor,
// or recvPages (a HelHandleResult). No byte is copied. The sender's range reads as zero pages
// from then on, through every mapping, as Mach's out-of-line memory sent with deallocate or
// vmsplice's SPLICE_F_GIFT leave it; until the pairing, the sender may still write it.
//
//   submission errors (the exchange is refused), in this order: kHelErrIllegalArgs for an
//     offset or length that is not page-aligned, a length of 0 or above 16 MiB, or an item
//     flag other than kHelItemChain; kHelErrNoDescriptor; kHelErrUnsupportedOperation for memory
//     whose frames cannot move (continuous, copy-on-write, managed, swappable, indirect, physical
//     memory and slices); kHelErrBadDescriptor for a handle that is no memory; kHelErrBadRights
//     without kHelRightRead and kHelRightWrite; kHelErrOutOfBounds for a range past the object's
//     end
//   completion: kHelErrNone on both, the receive with the new object's handle (the rights of
//     the sender's handle). A pullDescriptor requiring more rights: kHelErrBadRights for it,
//     kHelErrNone for the send, and the pages stay. kHelErrIllegalState on both while a range
//     of the memory is locked (kHelSubmitLockMemoryView), kHelErrNoMemory on both when the new
//     object cannot be made: the pages stay. A receive whose handle cannot be attached gets
//     kHelErrNoMemory and the pages are gone with it. Against any other action
//     kHelErrTransmissionMismatch on both; a dismiss dismisses it.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace page_transfer {

inline constexpr int kActionSendPages = helsim::ext::kFirstExtensionAction + 4;
inline constexpr int kActionRecvPages = helsim::ext::kFirstExtensionAction + 5;

// sendPages: word0 the offset, length the length, handle the memory object.
inline HelError decode_send_pages(helsim::ext::Caller &caller, const HelAction &action,
		helsim::ext::StreamItem item) {
	return item.capture_pages(caller, action.handle, action.word0, action.length);
}

// recvPages takes what it is handed: nothing to decode.
inline HelError decode_recv_pages(helsim::ext::Caller &, const HelAction &,
		helsim::ext::StreamItem) {
	return kHelErrNone;
}

// The kernel moves the pages and attaches the new object, as a push meeting a pull.
inline void pair_pages(helsim::ext::StreamPair &pair) {
	pair.hand_over(pair.first(), pair.second());
}

// Registers sendPages and recvPages on `machine`; sendPages pairs with recvPages and with
// the built-in pullDescriptor.
inline void install(helsim::Machine &machine) {
	namespace ext = helsim::ext;
	ext::register_stream_action(machine, kActionSendPages, "sendPages", ext::StreamResult::simple,
			decode_send_pages);
	ext::register_stream_action(machine, kActionRecvPages, "recvPages", ext::StreamResult::handle,
			decode_recv_pages);
	ext::register_stream_pair(machine, kActionSendPages, kActionRecvPages, pair_pages);
	ext::register_stream_pair(machine, kActionSendPages, kHelActionPullDescriptor, pair_pages);
}

// The items for helsim::ipc's exchange builders.
inline helsim::ipc::Leaf<helsim::ipc::SimpleResult> send_pages(HelHandle memory, std::size_t offset,
		std::size_t length) {
	HelAction action = helsim::ipc::make_action(kActionSendPages);
	action.word0 = offset;
	action.length = length;
	action.handle = memory;
	return {action};
}

inline helsim::ipc::Leaf<helsim::ipc::HandleResult> recv_pages() {
	return {helsim::ipc::make_action(kActionRecvPages)};
}

} // namespace page_transfer
