// The parts of an exchange in flight (stream.cpp's private types): a Packet per submission,
// one block with a Node per action.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "kernel/ipc/queue.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_cache.hpp"
#include "kernel/memory/space.hpp"

namespace helsim::kernel {

// Send data that does not fit a node's `small` array: a cached block up to kMaxBufferedSend
// bytes, the heap beyond (a scatter-gather send of up to kMaxSgBytes).
class SendData {
public:
	SendData() = default;
	SendData(const SendData &) = delete;
	SendData &operator=(const SendData &) = delete;
	~SendData() {
		if (data_)
			StreamCache::give(data_, cache_class(size_), block_bytes(size_));
	}

	// False when the heap has no memory left.
	bool allocate(std::size_t size) {
		size_ = size;
		data_ = static_cast<std::byte *>(StreamCache::take(cache_class(size), block_bytes(size)));
		return data_ != nullptr;
	}
	std::byte *get() const { return data_; }
	explicit operator bool() const { return data_ != nullptr; }

private:
	static StreamCache::Class cache_class(std::size_t size) {
		return size <= kMaxBufferedSend ? StreamCache::kSendData : StreamCache::kNoClass;
	}
	static std::size_t block_bytes(std::size_t size) {
		return size <= kMaxBufferedSend ? kMaxBufferedSend : size;
	}

	std::byte *data_ = nullptr;
	std::size_t size_ = 0;
};

// One action of a packet. Request fields are captured at submit time; result fields are
// written when the node is paired (or failed) and read when the packet completes.
struct Node {
	Packet *packet = nullptr;
	const ActionRow *row = nullptr; // its action type
	std::uint32_t flags = 0;
	Node *parent = nullptr;
	Node *first_child = nullptr; // the ancillary list
	Node *last_child = nullptr;
	Node *next_sibling = nullptr; // next item of the list this one belongs to
	Node *queue_next = nullptr;   // the lane's queue, or the worklist of a submit
	Node *partner = nullptr;      // on a worklist: the node it pairs with (else it fails)
	Node *open_below = nullptr;   // while validating: the list below this one on the open stack
	Lane *lane = nullptr; // the lane it travels on, kept alive by the first node of its list:
	Ref<Lane> list_lane;  // the nodes of a list are freed together, with their packet

	// Request.
	const void *user_buffer = nullptr;
	std::size_t length = 0;
	std::uint32_t rights = 0;
	bool buffered = false;             // send data was copied at submit (kernel buffer)
	HelError send_error = kHelErrNone; // fault while copying send data at submit
	SendData large;                    // buffered send data larger than `small`
	std::array<std::byte, kMaxInlineReceive> small; // left uninitialised: written before read
	Resolved pushed;
	// ext::StreamItem::capture_pages: the range of `pushed`, a memory view, whose frames move
	// when the item is handed over (none while pages_size is 0).
	std::size_t pages_offset = 0;
	std::size_t pages_size = 0;
	std::array<char, 16> credentials{};
	std::uint32_t trace_track = 0; // tracing on, a pull: its submitter's track (TraceRecorder)

	// Result.
	HelError error = kHelErrNone;
	HelHandle handle = kHelNullHandle;
	std::size_t result_length = 0;

	const std::byte *data() const { return large ? large.get() : small.data(); }
};

struct Packet {
	Ref<IpcQueue> queue;
	// Each reference is taken only by a packet that may need it (a locked increment at submit
	// and a decrement when freed, on every exchange otherwise).
	// The submitter's space, if the packet receives into a buffer or streams a send from one
	// (buffered sends are read at submit, inline receives land in the completion).
	Ref<AddressSpace> space;
	std::uintptr_t context = 0;
	std::size_t max_result_bytes = 0; // the most its completion element can take
	// The submitter's universe, if the packet can attach a descriptor (offer, accept, pull).
	std::shared_ptr<UniverseAnchor> anchor;
	// Taken when a handle is attached; dropped with the packet. Nodes of one packet can pair
	// on different streams at the same time (two offers, each pulling a descriptor in its
	// ancillary list), so the first take is guarded.
	SpinLock universe_lock;
	Ref<Universe> universe;
	std::atomic<std::size_t> remaining{0};
	std::size_t count = 0;
	Node *first_root = nullptr; // the root list
	Node *last_root = nullptr;
	Packet *reap_next = nullptr;
	Node *nodes() { return reinterpret_cast<Node *>(this + 1); }

	static std::size_t bytes(std::size_t count) { return sizeof(Packet) + count * sizeof(Node); }
	static StreamCache::Class cache_class(std::size_t count) {
		static_assert(StreamCache::kPacket4 - StreamCache::kPacket1 == 3);
		return count <= 4 ? static_cast<StreamCache::Class>(StreamCache::kPacket1 + count - 1)
						  : StreamCache::kNoClass;
	}
	// One block holds the packet and its nodes.
	static Packet *create(std::size_t count) {
		static_assert(sizeof(Packet) % alignof(Node) == 0);
		void *memory = StreamCache::take(cache_class(count), bytes(count));
		if (!memory)
			throw std::bad_alloc{};
		auto *packet = new (memory) Packet;
		packet->count = count;
		for (std::size_t i = 0; i < count; ++i)
			new (packet->nodes() + i) Node;
		return packet;
	}
	static void destroy(Packet *packet) {
		std::size_t count = packet->count;
		for (std::size_t i = 0; i < count; ++i)
			packet->nodes()[i].~Node();
		packet->~Packet();
		StreamCache::give(packet, cache_class(count), bytes(count));
	}
	struct Deleter {
		void operator()(Packet *p) const { destroy(p); }
	};
};

} // namespace helsim::kernel
