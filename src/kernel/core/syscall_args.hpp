// Decoding helpers shared by the files that implement syscall entry points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernel/core/call_registry.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

template <typename T>
T arg(const HelWord *args, int i) {
	if constexpr (std::is_pointer_v<T>)
		return reinterpret_cast<T>(args[i]);
	else
		return static_cast<T>(args[i]);
}

inline bool page_aligned(std::uintptr_t v) { return (v & (sim::kPageSize - 1)) == 0; }

// A non-empty, page-aligned range inside user space. Bounding it by user space (not just
// refusing a wrap) keeps every walk over such a range finite in practice.
inline bool page_range(std::uintptr_t pointer, std::size_t size) {
	return size && page_aligned(pointer) && page_aligned(size) && pointer <= kUserEnd &&
			size <= kUserEnd - pointer;
}

// An SQ operation that completes while it is being submitted.
inline HelError complete_at_once(Thread &self, IpcQueue &queue, std::uintptr_t context,
		HelError result) {
	self.note_submitted();
	queue.complete_simple(self, result, context);
	return kHelErrNone;
}

inline HelError attach_new(Thread &self, Ref<Object> object, std::uint32_t rights, HelWord *outs) {
	HelHandle handle;
	if (HelError e = self.universe().attach(std::move(object), rights, handle); e != kHelErrNone)
		return e;
	outs[0] = static_cast<HelWord>(handle);
	return kHelErrNone;
}

// An SQ payload, read once: user space may change it meanwhile.
template <typename T>
bool read_payload(T &out, const std::byte *payload, std::size_t length) {
	if (length < sizeof(T))
		return false;
	std::memcpy(&out, payload, sizeof(T));
	return true;
}

// An SQ operation whose payload is one request struct, which its row reads (sq_row).
template <typename Request>
using RequestSqFn = HelError (*)(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const Request &request);

// The one prologue of those operations: the payload read once into the request struct (a
// shorter one is kHelErrBufferTooSmall), then the operation with the typed request.
template <typename Request, RequestSqFn<Request> Operation>
HelError read_request_then(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	Request request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	return Operation(self, queue, context, request);
}

template <typename Request>
Request request_of(RequestSqFn<Request>);

// The SQ row of such an operation: sq_row<sq_protect_memory>("ProtectMemory", result size).
template <auto Operation>
SqRow sq_row(std::string name, std::size_t result_size) {
	using Request = decltype(request_of(Operation));
	return {std::move(name), result_size, read_request_then<Request, Operation>};
}

} // namespace helsim::kernel
