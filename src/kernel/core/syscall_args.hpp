// Decoding helpers shared by the files that implement syscall entry points.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernel/core/call_registry.hpp"
#include "kernel/core/token.hpp"
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

// A handle of the caller's universe to an object of type T.
template <typename T>
Lookup<T> resolve_object(Thread &self, HelHandle handle, std::uint32_t rights) {
	return self.universe().resolve<T>(handle, rights);
}

// ---------------------------------------------------------------- decode, then invoke
//
// A synchronous syscall is a row of parameter descriptors and an invoke function (seL4's and
// thor's decode/invoke split): syscall_row<invoke, Handle<0, IpcQueue, kHelRightInvoke>,
// Flags<1, kHelDriveWait>>("helDriveQueue", params). The row's entry decodes the descriptors in
// the order they are declared, which is the order errors are reported (Managarm's: a contract
// tests pin), returns the first error, and only then calls invoke with the typed values in that
// order (and the output words, if invoke takes them). Each descriptor reads one argument word,
// given by its index I.

// A word decode passes on unchecked; its kind says only what the trace and the tests see.
template <ParamKind Kind, int I, typename T>
struct Unchecked {
	using Value = T;
	static constexpr ParamInfo info{Kind, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<T>(args, I);
		return kHelErrNone;
	}
};

// A word that Valid accepts, or kHelErrIllegalArgs.
template <ParamKind Kind, int I, typename T, bool (*Valid)(T)>
struct Checked {
	using Value = T;
	static constexpr ParamInfo info{Kind, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<T>(args, I);
		return Valid(out) ? kHelErrNone : kHelErrIllegalArgs;
	}
};

// A value the effect interprets: never an error here.
template <int I, typename T = HelWord>
using Word = Unchecked<ParamKind::word, I, T>;

// A word that may be a host address the effect alone reads (a completion's context, a futex
// word, a panic message), by rules of its own.
template <int I, typename T = std::uintptr_t>
using Address = Unchecked<ParamKind::address, I, T>;

// Flags read as a T: a bit outside Mask is kHelErrIllegalArgs.
template <int I, auto Mask, typename T = std::uint32_t>
struct Flags {
	using Value = T;
	static constexpr ParamInfo info{ParamKind::flags, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<T>(args, I);
		return out & ~static_cast<T>(Mask) ? kHelErrIllegalArgs : kHelErrNone;
	}
};

// A handle resolved by Resolve with Rights: kHelErrNoDescriptor, kHelErrBadDescriptor,
// kHelErrBadRights (Universe::resolve), or what Resolve answers for the handles it gives a
// meaning of its own (kHelThisUniverse, kHelNullHandle for the caller's space).
template <int I, typename T, std::uint32_t Rights, auto Resolve = resolve_object<T>>
struct Handle {
	using Value = Lookup<T>;
	static constexpr ParamInfo info{ParamKind::handle, I, 0, T::kKind, Rights};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		out = Resolve(self, arg<HelHandle>(args, I), Rights);
		return out.error;
	}
};

// The machine's hardware access token (check_hardware_token): a token that is not the one
// that opens hardware is kHelErrBadPermissions. The value only says the check passed.
struct HardwareAccess {};

template <int I>
struct HardwareToken {
	using Value = HardwareAccess;
	static constexpr ParamInfo info{ParamKind::handle, I, 0, Token::kKind, kHelRightInvoke};
	static HelError decode(Thread &self, const HelWord *args, Value &) {
		return check_hardware_token(self, arg<HelHandle>(args, I));
	}
};

// A descriptor of any kind, for a call that looks at the kind itself: kHelErrNoDescriptor.
template <int I>
struct AnyHandle {
	using Value = Resolved;
	static constexpr ParamInfo info{ParamKind::any_handle, I};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		return self.universe().lookup(arg<HelHandle>(args, I), out);
	}
};

// A handle the effect looks up itself: in another universe, or in an operation it submits.
// Kind names an object such a handle may name (tests make one).
template <int I, ObjectKind Kind>
struct HandleWord {
	using Value = HelHandle;
	static constexpr ParamInfo info{ParamKind::handle_word, I, 0, Kind};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<HelHandle>(args, I);
		return kHelErrNone;
	}
};

// A T copied in from the caller's memory, once: kHelErrFault for memory it cannot read.
template <int I, typename T>
struct UserIn {
	using Value = T;
	static constexpr ParamInfo info{ParamKind::user_in, I};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		return copy_from_user(self, &out, arg<const void *>(args, I), sizeof(T));
	}
};

// Where the effect writes a T in the caller's memory. Managarm writes outputs after the effect,
// so the pointer is checked by the copy (kHelErrFault), which is the only way to write it.
template <typename T>
class UserPtr {
public:
	UserPtr() = default;
	explicit UserPtr(T *pointer) : pointer_{pointer} {}
	// Null, for an output the caller may leave out.
	explicit operator bool() const { return pointer_ != nullptr; }
	HelError write(Thread &self, const T &value) const { return write(self, &value, 1); }
	HelError write(Thread &self, const T *values, std::size_t count) const {
		return copy_to_user(self, pointer_, values, count * sizeof(T));
	}

private:
	T *pointer_ = nullptr;
};

template <int I, typename T>
struct UserOut {
	using Value = UserPtr<T>;
	static constexpr ParamInfo info{ParamKind::user_out, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = UserPtr<T>{arg<T *>(args, I)};
		return kHelErrNone;
	}
};

// Bytes of the caller's memory at word P, word L long: kHelErrFault for a range that can
// never be user memory (user_range_ok); the effect copies through the checked routines.
struct UserRangeValue {
	const void *pointer = nullptr;
	std::size_t size = 0;
};

template <int P, int L>
struct UserRange {
	using Value = UserRangeValue;
	static constexpr ParamInfo info{ParamKind::user_range, P, L};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = {arg<const void *>(args, P), arg<std::size_t>(args, L)};
		return user_range_ok(out.pointer, out.size) ? kHelErrNone : kHelErrFault;
	}
};

// A call whose validation is data-dependent (one argument decides how another is read): its
// own decode function, still a step of its own that returns the validated struct or the error
// before any effect.
template <auto Decode>
struct Decoded;
template <typename T, HelError (*Decode)(Thread &, const HelWord *, T &)>
struct Decoded<Decode> {
	using Value = T;
	static constexpr ParamInfo info{ParamKind::decoded, 0};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		return Decode(self, args, out);
	}
};

// The argument words as they came, for an effect that reports them (helPanic, to an observer).
struct Arguments {
	using Value = const HelWord *;
	static constexpr ParamInfo info{ParamKind::arguments, 0};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = args;
		return kHelErrNone;
	}
};

template <typename... P>
inline constexpr std::array<ParamInfo, sizeof...(P)> kDecodeTable{P::info...};

// `args` and `outs` go unused by a row without descriptors or without outputs.
template <auto Invoke, typename... P, std::size_t... N>
HelError decode_then_invoke(Thread &self, [[maybe_unused]] const HelWord *args,
		[[maybe_unused]] HelWord *outs, std::index_sequence<N...>) {
	std::tuple<typename P::Value...> values;
	HelError error = kHelErrNone;
	if (!(((error = P::decode(self, args, std::get<N>(values))) == kHelErrNone) && ...))
		return error;
	if constexpr (std::is_invocable_v<decltype(Invoke), Thread &, typename P::Value &...,
						  HelWord *>)
		return Invoke(self, std::get<N>(values)..., outs);
	else
		return Invoke(self, std::get<N>(values)...);
}

template <auto Invoke, typename... P>
HelError decode_then_invoke(Thread &self, const HelWord *args, HelWord *outs) {
	return decode_then_invoke<Invoke, P...>(self, args, outs, std::index_sequence_for<P...>{});
}

// The row: `params` names the argument words for traces (SyscallRow::params); a test checks
// that its handle and address markers agree with the descriptors.
template <auto Invoke, typename... P>
SyscallRow syscall_row(std::string name, const char *params) {
	return {std::move(name), params, decode_then_invoke<Invoke, P...>, nullptr, kDecodeTable<P...>};
}

// complete_at_once() for a traced thread: its flow starts before it completes.
[[gnu::noinline, gnu::cold]] inline HelError complete_at_once_traced(Thread &self, IpcQueue &queue,
		std::uintptr_t context, HelError result) {
	self.note_submitted();
	queue.complete_simple(self, result, context);
	return kHelErrNone;
}

// An SQ operation that completes while it is being submitted. The traced case apart, so that
// the common one makes no call before the completion and needs no stack frame.
inline HelError complete_at_once(Thread &self, IpcQueue &queue, std::uintptr_t context,
		HelError result) {
	if (self.tracer()) [[unlikely]]
		return complete_at_once_traced(self, queue, context, result);
	self.operations_submitted.bump();
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
