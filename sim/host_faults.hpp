// Host faults on simulated user memory. User mappings are host mappings at the same address,
// so the kernel touches user memory directly and a bad user pointer becomes a host SIGSEGV
// (or SIGBUS). This layer turns such faults into something the kernel can handle:
//
// - safe_copy() / safe_load_u32() are small asm routines with an exception-table-style fixup:
//   when the faulting instruction is one of theirs, the signal handler moves RIP to a fixup
//   label and the routine returns what it did not copy. They never crash on a bad pointer.
// - register_window() hands faults on direct accesses inside [base, base + size) to a
//   FaultResolver, which may make the page accessible (the access is then retried) or give up.
// - A fault the resolvers leave unresolved, a fault outside every window, and the CPU's
//   SIGILL, SIGFPE and SIGTRAP, all raised by *simulated user code* (the host thread runs a
//   fiber task that is not in the kernel: Task::in_kernel()), go to that task's
//   Task::handle_user_fault(): the kernel stops the thread for its observers, or ends it
//   without unwinding (Task::abandon_fiber()); either way the process lives on.
// - An unresolved window fault anywhere else (kernel code, an attached host thread, a host
//   thread that is no task) kills the process with SIGSEGV after a one-line diagnostic, as
//   does one whose task declines it.
// - Every other signal goes to the handler that was installed before ours (e.g. ASan's).
//
// The handler is process-wide and installed on first use of any function here. It runs on the
// faulting thread's own stack (no SA_ONSTACK), with SA_NODEFER, and with the signal mask of the
// faulting code, so a resolver may switch fibers and another fiber on the same host thread may
// fault meanwhile. A stack overflow therefore cannot run it; it kills the process with SIGSEGV.
// Nothing must replace the SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP handlers afterwards.
#pragma once

#include <cstddef>
#include <cstdint>

namespace helsim::sim {

// Copies n bytes from src to dst; returns the number of bytes NOT copied (0 = all). A fault on
// either side (unmapped or protected host memory, a non-canonical address) never crashes: the
// copy stops at the first faulting byte. Faults inside a registered window are not handed to
// its resolver: the copy just stops there. Invisible to ASan and TSan (plain asm).
std::size_t safe_copy(void *dst, const void *src, std::size_t n) noexcept;

// One 4-byte load (atomic when p is 4-byte aligned): true and `out` set when p..p+3 is
// readable, false (out untouched) when the load faults. Used for futex words.
bool safe_load_u32(const void *p, std::uint32_t &out) noexcept;

// What simulated user code did, as the CPU reported it (see Task::handle_user_fault).
enum class UserFaultKind : std::uint8_t {
	// SIGSEGV (not-present or protection page fault) or SIGBUS.
	page_fault,
	// SIGSEGV with SI_KERNEL (#GP): a non-canonical address, a privileged instruction (hlt,
	// cli, ...), a misaligned SSE access.
	general_protection,
	// SIGILL: ud2, an opcode the host CPU lacks.
	illegal_instruction,
	// SIGFPE from integer division: by zero, or a quotient that overflows.
	divide_error,
	// SIGTRAP from int3 (the ip is already past it).
	breakpoint,
	// SIGFPE from an unmasked x87/SSE exception.
	floating_point,
};

struct UserFault {
	UserFaultKind kind;
	std::uintptr_t address; // page faults: the faulting address; otherwise 0
	std::uintptr_t pc;      // the faulting instruction (int3: the one after it)
	bool write;             // page faults: a write access
};

// Resolves host faults inside a registered window.
class FaultResolver {
public:
	// Called from the SIGSEGV/SIGBUS handler on the faulting thread's own stack; it may park or
	// switch fibers before returning. True: the page is accessible now and the access is
	// retried (returning true without making it accessible faults again, forever). False: the
	// fault cannot be resolved; simulated user code's fault goes to its task (see above),
	// anything else's kills the process as if by SIGSEGV. Unwinding a fiber parked in
	// here (Fiber::unwind) throws through the signal frame into the faulting function, which
	// ends in std::terminate if that function has cleanups and was not compiled with
	// -fnon-call-exceptions. Resume such a fiber instead so that it leaves the handler first
	// (e.g. map a scratch page and return true), or keep direct accesses to windows in
	// functions without destructors to run.
	virtual bool resolve_host_fault(std::uintptr_t address, bool write) = 0;
	// For the diagnostic printed before dying of an unresolved fault: a NUL-terminated
	// description of the address written to buf (len bytes, at least 1). Called from the
	// signal handler: only async-signal-safe work, no allocation.
	virtual void describe_unresolved([[maybe_unused]] std::uintptr_t address,
			[[maybe_unused]] bool write, char *buf, std::size_t len) {
		if (len)
			buf[0] = '\0';
	}

protected:
	~FaultResolver() = default;
};

// Hands faults in [base, base + size) to resolver (at most kMaxFaultWindows windows at a time;
// throws std::length_error beyond, std::invalid_argument for size 0 or a null resolver).
// Installs the process-wide handler on first use.
inline constexpr std::size_t kMaxFaultWindows = 16;
void register_window(std::uintptr_t base, std::size_t size, FaultResolver *resolver);
// Removes the window registered at base (no-op if none). The caller makes sure no fault in the
// window is being resolved or can still happen that it wants resolved.
void unregister_window(std::uintptr_t base);

} // namespace helsim::sim
