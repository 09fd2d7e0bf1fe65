// Streams: two lanes that match action lists pairwise, in order (Managarm's ExchangeMsgs).
//
// A stream's two ends are Lane objects; a lane handle references one. A lane breaks when its
// last reference — handles in any universe and in-flight items — is gone. Each submission
// (one HelAction list) becomes a Packet of Nodes, one per action; the packet posts one
// completion element, with every result in action order, once all its nodes are done.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "kernel/core/object.hpp"
#include "kernel/core/spinlock.hpp"
#include "kernel/core/universe.hpp"

namespace helsim::kernel {

class IpcQueue;
class Thread;
class Stream;
struct Packet;

inline constexpr std::uint32_t kLaneDefaultRights = kHelRightInvoke | kHelRightManage;
inline constexpr std::size_t kMaxInlineReceive = 128; // Managarm's hard-coded RecvInline size
inline constexpr std::size_t kMaxBufferedSend = 4096; // larger sends stream from the sender
// A scatter-gather send is copied into the kernel at submission, so user space decides two
// allocations; both are bounded (kHelErrIllegalArgs beyond). Thor has no bound but kernel
// memory; these are far above what protocols send in one list, and cost the host little.
inline constexpr std::size_t kMaxSgItems = 1024;
inline constexpr std::size_t kMaxSgBytes = std::size_t{16} << 20;

class Lane final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::lane;

	Lane(Kernel &kernel, Stream &stream, int side);
	~Lane() override;
	const char *describe() const override { return "lane"; }

	Stream &stream() const { return *stream_; }
	int side() const { return side_; }
	void for_each_reference(const std::function<void(Object &)> &f) override;

protected:
	// The lane is broken: fail what waits on the other lane, then go.
	void last_reference_dropped() override;

private:
	Ref<Stream> stream_;
	int side_;
};

// Work that should not run inside a pairing: a copy that has to fault pages in or wait for a
// pager. The outermost Reaper starts it, once the submission that paired it has finished its
// own worklist.
class DeferredStart {
public:
	virtual void start_deferred() = 0;
	DeferredStart *deferred_next = nullptr;

protected:
	~DeferredStart() = default;
};

// Packets finished by a submission are freed once it is done with them all: freeing one drops
// lane references, which may break a lane and take a stream lock again. Deferred starts run
// then too, before the packets are freed.
// Reapers nest: an inner one (a lane breaking while packets are being freed) hands its
// packets to the outermost one of the host thread, which frees them last. No reaper spans a
// park, so the thread_local that links them cannot be observed from another host thread.
class Reaper {
public:
	Reaper();
	Reaper(const Reaper &) = delete;
	Reaper &operator=(const Reaper &) = delete;
	~Reaper();
	void add(Packet *packet);
	void defer(DeferredStart &work);

private:
	Reaper &owner() { return outer_ ? *outer_ : *this; }

	Reaper *outer_;
	Packet *packets_ = nullptr;         // linked through Packet::reap_next
	DeferredStart *deferred_ = nullptr; // linked through deferred_next, started in order
	DeferredStart *deferred_tail_ = nullptr;
};

class Stream final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::stream;

	// Creates a stream and its two lanes.
	static void create(Kernel &kernel, bool with_credentials, Ref<Lane> &lane0, Ref<Lane> &lane1);
	const char *describe() const override { return "stream"; }

	bool has_credentials() const { return has_credentials_; }
	const std::array<char, 16> &credentials() const { return credentials_; }

	// helShutdownLane.
	void shutdown(int side);

	// Submits a list of items (linked through next_sibling) on `lane`, one of this stream's
	// two, in order. The list takes over the caller's reference to `lane` (Ref::release()) and
	// keeps it until its packet is freed.
	void submit(Lane *lane, struct Node *first, Reaper &reaper);

	void lane_dead(int side);
	// Teardown: fails every queued item with kHelErrEndOfLane.
	void abandon() override;
	// Every item queued on either lane, waiting for its peer, named by its action, on the lane
	// it travels on. An item's ancillary list is not queued anywhere until the item pairs (its
	// items then continue on the child stream, whose own walk reports them).
	void for_each_pending(const std::function<void(const PendingOperation &)> &f) override;

private:
	template <typename T, typename... Args>
	friend Ref<T> make_object(Args &&...args);
	friend class Lane;
	explicit Stream(Kernel &kernel);

	// Runs with no stream lock held.
	void pair(struct Node &a, struct Node &b, Reaper &reaper);
	// Empties a lane's queue; the caller fails the list after the lock.
	struct Node *take_queued(int side);

	SpinLock lock_;
	struct Node *head_[2] = {nullptr, nullptr};
	struct Node *tail_[2] = {nullptr, nullptr};
	bool broken_[2] = {false, false};
	bool shut_down_[2] = {false, false};
	bool has_credentials_ = false;
	std::array<char, 16> credentials_{};
};

// Validates and submits an action list on behalf of `self` (ExchangeMsgs and the legacy
// helSubmitAsync share this). `actions` has been copied out of user memory already.
// Returns a submission error, or kHelErrNone once the packet is in flight. Takes over the
// reference the caller's lookup holds on `lane` (Ref::release()): the packet keeps it, or a
// refused submission drops it, a locked increment and decrement less per exchange than a
// reference of the packet's own. A raw pointer, not a Ref, so that it travels in a register.
HelError submit_exchange(Thread &self, Lane *lane, std::span<const HelAction> actions,
		IpcQueue &queue, std::uintptr_t context);

} // namespace helsim::kernel
