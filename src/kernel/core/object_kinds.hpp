// The registry of object kinds: one row per kind, built-ins and extensions alike. A row holds
// what the kernel needs to know of a kind without switching on it: the name reports and traces
// use, the type helDescriptorInfo reports, the rights a descriptor of the kind can carry and is
// given by default, and what machine teardown does with an object of the kind still alive.
// Operations on an object stay the object's own (virtual functions and its syscalls).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include <helsim/hel.h>

namespace helsim::kernel {

// A kind is the index of its row. The built-ins are registered first, in this order, when the
// kernel is constructed, so that their ids are constants: a typed handle lookup
// (Universe::resolve) checks the kind with one compare. Extension kinds follow.
enum class ObjectKind : std::uint32_t {
	universe,
	queue,
	memory_view,
	memory_slice,
	memory_view_lock,
	swap_space,
	address_space,
	thread,
	lane,
	token,
	oneshot_event,
	bitset_event,
	irq_pin,
	irq,
	kernlet_object,
	bound_kernlet,
	dma_space,
	io_space,
	stream, // kernel-internal: reached only through its lanes
};
inline constexpr std::size_t kBuiltinKinds = static_cast<std::size_t>(ObjectKind::stream) + 1;
inline constexpr std::size_t kMaxObjectKinds = 64;

// The rights bits hel defines (kHelRight*), and those a kind may define for itself.
inline constexpr std::uint32_t kRightsMask = (1u << 14) - 1;
inline constexpr std::uint32_t kKindRightsMask = 0xffff0000u;

// What machine teardown does with a live object of the kind (Machine's destructor, in order).
enum class Teardown : std::uint8_t {
	// Object::abandon, first: work still waiting inside completes with an error, releasing
	// the references it holds.
	abandon,
	// Object::close_handles, after blocked fibers have unwound: the object drops the
	// descriptors it holds, which breaks reference cycles through handles (universes).
	close_handles,
};

struct KindRow {
	std::string name;                 // leak and deadlock reports, object counts, traces
	int descriptor_type = 0;          // the kHelDesc* type helDescriptorInfo reports
	std::uint32_t rights = 0;         // the rights a descriptor of the kind can carry
	std::uint32_t default_rights = 0; // a new object's first descriptor, unless narrowed
	Teardown teardown = Teardown::abandon;
};

class ObjectKinds {
public:
	// Appends a row and returns its kind. Throws std::invalid_argument for an empty or taken
	// name, default rights outside `rights`, or rights outside kRightsMask | kKindRightsMask;
	// std::length_error when kMaxObjectKinds rows exist.
	ObjectKind add(KindRow row);

	// Rows never move or change once added: readers take no lock.
	const KindRow &operator[](ObjectKind kind) const {
		return rows_[static_cast<std::size_t>(kind)];
	}
	std::size_t size() const { return size_.load(std::memory_order_acquire); }
	bool contains(ObjectKind kind) const { return static_cast<std::size_t>(kind) < size(); }

private:
	std::mutex mutex_;
	std::array<KindRow, kMaxObjectKinds> rows_;
	std::atomic<std::size_t> size_{0};
};

// Adds the built-in rows, in ObjectKind's order.
void register_builtin_kinds(ObjectKinds &kinds);

} // namespace helsim::kernel
