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
// One that also works on the object a handle of the request names, which its row resolves.
template <typename Request, typename T>
using ObjectSqFn = HelError (*)(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const Request &request, Lookup<T> &object);

template <typename Fn>
struct SqOperation;
template <typename Request>
struct SqOperation<RequestSqFn<Request>> {
	using RequestType = Request;
};
template <typename Request, typename T>
struct SqOperation<ObjectSqFn<Request, T>> {
	using RequestType = Request;
};

// The prologue of those operations, once: the payload read once into the request struct (a
// shorter one is kHelErrBufferTooSmall), then the operation with the typed request.
template <typename Request, RequestSqFn<Request> Operation>
HelError read_request_then(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	Request request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	return Operation(self, queue, context, request);
}

// Then, for an operation on an object: the handle in the request's field `Handle` resolved by
// `Resolve` with `Rights` (its errors are the submission's), then the operation, which may
// take the object's reference out of the lookup.
template <auto Operation, auto Resolve, auto Handle, std::uint32_t Rights>
HelError resolve_then(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const typename SqOperation<decltype(Operation)>::RequestType &request) {
	auto object = Resolve(self, request.*Handle, Rights);
	if (!object)
		return object.error;
	return Operation(self, queue, context, request, object);
}

// A handle of the caller's universe to an object of type T.
template <typename T>
Lookup<T> resolve_object(Thread &self, HelHandle handle, std::uint32_t rights) {
	return self.universe().resolve<T>(handle, rights);
}

// The SQ row of an operation on a request: sq_row<sq_await_clock>("AwaitClock", result size).
template <auto Operation>
SqRow sq_row(std::string name, std::size_t result_size) {
	using Request = typename SqOperation<decltype(Operation)>::RequestType;
	return {std::move(name), result_size, read_request_then<Request, Operation>};
}

// The SQ row of an operation on a request and the object it names: sq_row<sq_resize_memory,
// resolve_view, &HelSqResizeMemory::handle, kHelRightManage>("ResizeMemory", result size).
template <auto Operation, auto Resolve, auto Handle, std::uint32_t Rights>
SqRow sq_row(std::string name, std::size_t result_size) {
	using Request = typename SqOperation<decltype(Operation)>::RequestType;
	return {std::move(name), result_size,
			read_request_then<Request, resolve_then<Operation, Resolve, Handle, Rights>>};
}

} // namespace helsim::kernel
