// A universe: the capability table of the threads that live in it. A HelHandle indexes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

inline constexpr std::uint32_t kUniverseDefaultRights =
		kHelRightGrant | kHelRightTake | kHelRightAssign;

class Universe;

// A weak reference to a universe: in-flight IPC items must not keep their submitter's
// universe alive (the universe may hold the very lane such an item waits on).
class UniverseAnchor {
public:
	explicit UniverseAnchor(Universe *universe) : universe_{universe} {}
	// The universe, if it is still alive.
	Ref<Universe> lock();
	void clear();

private:
	std::mutex mutex_;
	Universe *universe_;
};

struct Resolved {
	Ref<Object> object;
	std::uint32_t rights = 0;
};

template <typename T>
struct Lookup {
	HelError error = kHelErrNone;
	Ref<T> object;
	std::uint32_t rights = 0;
	explicit operator bool() const { return error == kHelErrNone; }
};

class Universe final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::universe;

	explicit Universe(Kernel &kernel);
	~Universe() override;

	// Installs a descriptor; handles start at 1 and are never reused.
	// Returns kHelErrNoMemory when the handle space is exhausted.
	HelError attach(Ref<Object> object, std::uint32_t rights, HelHandle &out);

	// kHelErrNoDescriptor for unknown, closed or forged handles.
	HelError lookup(HelHandle handle, Resolved &out);

	// Typed lookup: kHelErrNoDescriptor, then kHelErrBadDescriptor for the wrong kind, then
	// kHelErrBadRights when `required` is not a subset of the descriptor's rights.
	template <typename T>
	Lookup<T> resolve(HelHandle handle, std::uint32_t required) {
		Lookup<T> result;
		Resolved r;
		if (HelError e = lookup(handle, r); e != kHelErrNone) {
			result.error = e;
			return result;
		}
		if (r.object->kind() != T::kKind) {
			result.error = kHelErrBadDescriptor;
			return result;
		}
		if ((r.rights & required) != required) {
			result.error = kHelErrBadRights;
			return result;
		}
		result.object = Ref<T>::adopt(static_cast<T *>(r.object.release()));
		result.rights = r.rights;
		return result;
	}

	HelError close(HelHandle handle);

	// A small id, unique in the machine and given in order of creation from 1 (so in
	// deterministic mode stable across equal seeds): how traces name universes.
	std::uint32_t id() const { return id_; }

	const std::shared_ptr<UniverseAnchor> &anchor() const { return anchor_; }
	void for_each_reference(const std::function<void(Object &)> &f) override { for_each(f); }
	// Closes every descriptor (teardown, and the universe's own destruction).
	void close_all();
	std::size_t descriptors_held() const override { return size(); }
	void close_handles() override { close_all(); }

	// Calls f(Object&) for every open descriptor (writers excluded meanwhile).
	template <typename F>
	void for_each(F &&f) {
		std::lock_guard lock{writer_mutex_};
		for (std::size_t s = 0; static_cast<std::int64_t>(s << kSegmentBits) < next_handle_; ++s)
			if (Segment *segment = directory_[s].load(std::memory_order_relaxed))
				for (auto &slot : segment->slots)
					if (Object *object = slot.object.load(std::memory_order_relaxed))
						f(*object);
	}

	// The lowest open handle that references `object`, or kHelNullHandle (reports only: it
	// scans every slot, writers excluded meanwhile).
	HelHandle handle_of(const Object &object);

	// Number of open descriptors (for tests and reports).
	std::size_t size() const { return open_.load(std::memory_order_relaxed); }

private:
	static constexpr unsigned kSegmentBits = 10;
	static constexpr std::size_t kSegmentSlots = std::size_t{1} << kSegmentBits;
	static constexpr std::size_t kDirectorySize = std::size_t{1} << 18;

	struct Slot {
		std::atomic<Object *> object{nullptr};
		std::uint32_t rights = 0; // written before `object` is published, never changed
	};
	struct Segment {
		Slot slots[kSegmentSlots];
		std::atomic<std::uint32_t> closed{0};
	};

	void retire(Segment *segment);
	void wait_for_readers();

	// Read side (lookup): no lock. A reader (1) announces itself in readers_[epoch & 1],
	// (2) loads the directory entry and the slot, (3) takes a reference, (4) leaves. A writer
	// that clears a slot (a) stores nullptr, (b) flips the epoch, (c) waits for the old
	// epoch's readers to leave, and only then (d) drops the descriptor's reference. All steps
	// are seq_cst, so a reader either registered before (c) and is waited for, or its (2)
	// comes after (a) and sees nullptr.
	std::atomic<Segment *> *directory_;
	std::atomic<std::uint32_t> epoch_{0};
	std::atomic<std::uint64_t> readers_[2]{};

	const std::uint32_t id_;
	std::shared_ptr<UniverseAnchor> anchor_;
	std::mutex writer_mutex_;
	std::int64_t next_handle_ = 1;
	std::atomic<std::size_t> open_{0};
};

} // namespace helsim::kernel
