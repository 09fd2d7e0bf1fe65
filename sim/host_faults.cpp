#include "host_faults.hpp"

#include "host.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#if !defined(__x86_64__) || !defined(__linux__)
#error "helsim host faults are x86-64 Linux only"
#endif

// The copy and load routines. Position independent (only relative jumps), no stack use, and
// not instrumented by any sanitizer. Every instruction that touches memory named by the
// caller has a fixup: the signal handler moves RIP from the faulting instruction to the
// fixup label, with the registers as the fault left them.
//
// helsim_safe_copy_asm(rdi = dst, rsi = src, rdx = n) -> rax = bytes not copied.
//   n >= 512: one `rep movsb` (ERMS). RCX counts the bytes still to copy; a fault leaves
//   RSI/RDI/RCX at a restartable point, which the fixup resumes byte by byte so that the
//   result is exact whatever granularity the CPU stopped at.
//   n < 512: 16-byte moves, one 8-byte move, then single bytes (rep movsb's startup cost is
//   higher up to a few hundred bytes). A faulting 16- or 8-byte move has no effect; its fixup
//   is the byte loop, which stops at the exact faulting byte.
// helsim_safe_load_u32_asm(rdi = p) -> rax = (1 << 32) | *p, or 0 if the load faulted.
asm(R"(
	.pushsection .text
	.p2align 4
	.globl helsim_safe_copy_asm
	.hidden helsim_safe_copy_asm
	.type helsim_safe_copy_asm, @function
helsim_safe_copy_asm:
	.cfi_startproc
	endbr64
	movq %rdx, %rcx
	cmpq $512, %rcx
	jb 1f
	.globl helsim_safe_copy_rep
	.hidden helsim_safe_copy_rep
helsim_safe_copy_rep:
	rep movsb
	xorl %eax, %eax
	ret
1:
	cmpq $16, %rcx
	jb 2f
	.globl helsim_safe_copy_xload
	.hidden helsim_safe_copy_xload
helsim_safe_copy_xload:
	movdqu (%rsi), %xmm0
	.globl helsim_safe_copy_xstore
	.hidden helsim_safe_copy_xstore
helsim_safe_copy_xstore:
	movdqu %xmm0, (%rdi)
	addq $16, %rsi
	addq $16, %rdi
	subq $16, %rcx
	cmpq $16, %rcx
	jae helsim_safe_copy_xload
2:
	cmpq $8, %rcx
	jb helsim_safe_copy_bytes
	.globl helsim_safe_copy_qload
	.hidden helsim_safe_copy_qload
helsim_safe_copy_qload:
	movq (%rsi), %rax
	.globl helsim_safe_copy_qstore
	.hidden helsim_safe_copy_qstore
helsim_safe_copy_qstore:
	movq %rax, (%rdi)
	addq $8, %rsi
	addq $8, %rdi
	subq $8, %rcx
	.globl helsim_safe_copy_bytes
	.hidden helsim_safe_copy_bytes
helsim_safe_copy_bytes:
	testq %rcx, %rcx
	jz helsim_safe_copy_done
	.globl helsim_safe_copy_bload
	.hidden helsim_safe_copy_bload
helsim_safe_copy_bload:
	movzbl (%rsi), %eax
	.globl helsim_safe_copy_bstore
	.hidden helsim_safe_copy_bstore
helsim_safe_copy_bstore:
	movb %al, (%rdi)
	incq %rsi
	incq %rdi
	decq %rcx
	jnz helsim_safe_copy_bload
	.globl helsim_safe_copy_done
	.hidden helsim_safe_copy_done
helsim_safe_copy_done:
	movq %rcx, %rax
	ret
	.cfi_endproc
	.size helsim_safe_copy_asm, .-helsim_safe_copy_asm

	.p2align 4
	.globl helsim_safe_load_u32_asm
	.hidden helsim_safe_load_u32_asm
	.type helsim_safe_load_u32_asm, @function
helsim_safe_load_u32_asm:
	.cfi_startproc
	endbr64
	.globl helsim_safe_load_u32_load
	.hidden helsim_safe_load_u32_load
helsim_safe_load_u32_load:
	movl (%rdi), %eax
	btsq $32, %rax
	ret
	.globl helsim_safe_load_u32_fail
	.hidden helsim_safe_load_u32_fail
helsim_safe_load_u32_fail:
	xorl %eax, %eax
	ret
	.cfi_endproc
	.size helsim_safe_load_u32_asm, .-helsim_safe_load_u32_asm
	.popsection
)");

#define HELSIM_HIDDEN __attribute__((visibility("hidden")))
extern "C" {
HELSIM_HIDDEN std::size_t helsim_safe_copy_asm(void *dst, const void *src, std::size_t n);
HELSIM_HIDDEN std::uint64_t helsim_safe_load_u32_asm(const void *p);
HELSIM_HIDDEN extern const char helsim_safe_copy_rep[];
HELSIM_HIDDEN extern const char helsim_safe_copy_xload[];
HELSIM_HIDDEN extern const char helsim_safe_copy_xstore[];
HELSIM_HIDDEN extern const char helsim_safe_copy_qload[];
HELSIM_HIDDEN extern const char helsim_safe_copy_qstore[];
HELSIM_HIDDEN extern const char helsim_safe_copy_bytes[];
HELSIM_HIDDEN extern const char helsim_safe_copy_bload[];
HELSIM_HIDDEN extern const char helsim_safe_copy_bstore[];
HELSIM_HIDDEN extern const char helsim_safe_copy_done[];
HELSIM_HIDDEN extern const char helsim_safe_load_u32_load[];
HELSIM_HIDDEN extern const char helsim_safe_load_u32_fail[];
}
#undef HELSIM_HIDDEN

namespace helsim::sim {
namespace {

// The size from which helsim_safe_copy_asm copies with `rep movsb` (its `cmpq $512`).
constexpr std::size_t kRepMinimum = 512;
constexpr std::size_t kRepAlign = 64;

// glibc's memcpy starts its `rep movsb` at a 64-byte aligned destination (the bytes before it
// are moved apart); from wherever user buffers begin it runs slower. So the head up to that
// boundary goes first, by the short path; the rest still takes `rep movsb`. Out of line: the
// short copies of every syscall stay a tail call.
[[gnu::noinline]] std::size_t safe_copy_unaligned(void *dst, const void *src, std::size_t n) {
	const std::size_t head = -reinterpret_cast<std::uintptr_t>(dst) & (kRepAlign - 1);
	if (std::size_t left = helsim_safe_copy_asm(dst, src, head))
		return n - head + left;
	return helsim_safe_copy_asm(static_cast<char *>(dst) + head,
			static_cast<const char *>(src) + head, n - head);
}

struct Fixup {
	const char *fault;
	const char *resume;
};

const Fixup fixups[] = {
		{helsim_safe_copy_rep, helsim_safe_copy_bytes},
		{helsim_safe_copy_xload, helsim_safe_copy_bytes},
		{helsim_safe_copy_xstore, helsim_safe_copy_bytes},
		{helsim_safe_copy_qload, helsim_safe_copy_bytes},
		{helsim_safe_copy_qstore, helsim_safe_copy_bytes},
		{helsim_safe_copy_bload, helsim_safe_copy_done},
		{helsim_safe_copy_bstore, helsim_safe_copy_done},
		{helsim_safe_load_u32_load, helsim_safe_load_u32_fail},
};

// A window slot, read by the handler without locks. seq is a seqlock: odd while a writer
// (holding windows_mutex) changes the slot. size 0 = free slot. Every access is seq_cst (no
// fences, which TSan does not support): a reader that sees any field written by a writer also
// sees that writer's odd seq on its second read. Loads are plain moves on x86.
struct Window {
	std::atomic<std::uint32_t> seq{0};
	std::atomic<std::uintptr_t> base{0};
	std::atomic<std::size_t> size{0};
	std::atomic<FaultResolver *> resolver{nullptr};
};

Window windows[kMaxFaultWindows];
std::mutex windows_mutex;

std::atomic<bool> installed{false};
std::mutex install_mutex;
// The signals we handle, and the handlers that were installed before ours (written once,
// before ours is installed).
constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
constexpr std::size_t kSignalCount = sizeof(kSignals) / sizeof(kSignals[0]);
struct sigaction previous[kSignalCount];

const struct sigaction &previous_of(int sig) {
	for (std::size_t i = 0; i < kSignalCount; ++i)
		if (kSignals[i] == sig)
			return previous[i];
	return previous[0]; // not reached: only our signals come here
}

const char *signal_name(int sig) {
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGTRAP: return "SIGTRAP";
	}
	return "signal";
}

void write_window(Window &w, std::uintptr_t base, std::size_t size, FaultResolver *resolver) {
	const std::uint32_t seq = w.seq.load();
	w.seq.store(seq + 1);
	w.base.store(base);
	w.size.store(size);
	w.resolver.store(resolver);
	w.seq.store(seq + 2);
}

FaultResolver *find_resolver(std::uintptr_t address) {
	for (Window &w : windows) {
		for (;;) {
			const std::uint32_t seq = w.seq.load();
			if (seq & 1)
				continue; // a writer is between its two stores: a few instructions
			const std::uintptr_t base = w.base.load();
			const std::size_t size = w.size.load();
			FaultResolver *resolver = w.resolver.load();
			if (w.seq.load() != seq)
				continue;
			if (size && address - base < size)
				return resolver;
			break;
		}
	}
	return nullptr;
}

void reset_default(int sig) {
	struct sigaction action;
	std::memset(&action, 0, sizeof(action));
	action.sa_handler = SIG_DFL;
	sigemptyset(&action.sa_mask);
	sigaction(sig, &action, nullptr);
}

// Async-signal-safe output.
struct Line {
	char text[512];
	std::size_t length = 0;

	void add(const char *s) {
		while (*s && length < sizeof(text) - 1)
			text[length++] = *s++;
	}
	void add_hex(std::uintptr_t value) {
		char digits[2 + 16];
		digits[0] = '0';
		digits[1] = 'x';
		for (int i = 0; i < 16; ++i)
			digits[2 + i] = "0123456789abcdef"[(value >> (60 - 4 * i)) & 0xf];
		for (char c : digits)
			if (length < sizeof(text) - 1)
				text[length++] = c;
	}
	void flush() {
		text[length++] = '\n';
		const char *p = text;
		std::size_t left = length;
		while (left) {
			const ssize_t n = write(STDERR_FILENO, p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return;
			p += n;
			left -= static_cast<std::size_t>(n);
		}
	}
};

void report_unresolved(int sig, std::uintptr_t address, bool write, std::uintptr_t pc,
		FaultResolver *resolver) {
	char description[256];
	description[0] = '\0';
	resolver->describe_unresolved(address, write, description, sizeof(description));
	description[sizeof(description) - 1] = '\0';
	Line line;
	line.add("helsim: unresolved host fault (");
	line.add(signal_name(sig));
	line.add("): ");
	line.add(write ? "write" : "read");
	line.add(" at ");
	line.add_hex(address);
	line.add(", pc ");
	line.add_hex(pc);
	if (description[0]) {
		line.add(": ");
		line.add(description);
	}
	line.flush();
}

// Not ours: hand the signal to whoever had it before.
void chain(int sig, siginfo_t *info, void *context) {
	const struct sigaction &previous = previous_of(sig);
	// sa_handler and sa_sigaction share storage: SIG_DFL/SIG_IGN whatever the flags say.
	if (previous.sa_handler == SIG_IGN && info->si_code <= 0)
		return; // sent by kill() and ignored before we came
	if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
		// Default action. A fault happens again once we return, now with the default
		// disposition (the kernel forces a fault even if ignored); a sent signal is re-sent,
		// and so is a trap: execution would go on after the int3.
		reset_default(sig);
		if (info->si_code <= 0 || sig == SIGTRAP)
			raise(sig);
		return;
	}
	if (previous.sa_flags & SA_RESETHAND)
		reset_default(sig);
	if (previous.sa_flags & SA_SIGINFO)
		previous.sa_sigaction(sig, info, context);
	else
		previous.sa_handler(sig);
}

// errno after a resolver ran: it may have parked and resumed us on another host thread, whose
// errno is another object. glibc declares __errno_location() const, so within one function
// GCC and clang both compute its address once and would write the old thread's errno.
__attribute__((noinline)) void restore_errno_after_switch(int value) {
	asm volatile("" ::: "memory");
	errno = value;
}

// The fiber task whose user code raised a fault, or nullptr: kernel code, an attached host
// thread (it cannot be abandoned) and host threads that are no task keep the old behaviour.
Task *user_task() {
	Task *task = current_task();
	return task && task->is_fiber() && !task->in_kernel() ? task : nullptr;
}

// What the CPU reported, for a task's handle_user_fault(). si_code > 0 has been checked.
UserFault classify(int sig, const siginfo_t *info, const greg_t *regs) {
	UserFault fault{UserFaultKind::page_fault, 0, static_cast<std::uintptr_t>(regs[REG_RIP]),
			false};
	switch (sig) {
	case SIGSEGV:
		if (info->si_code == SI_KERNEL) { // #GP: si_addr says nothing
			fault.kind = UserFaultKind::general_protection;
			break;
		}
		[[fallthrough]];
	case SIGBUS:
		fault.address = reinterpret_cast<std::uintptr_t>(info->si_addr);
		// Page-fault error code: bit 1 set for a write access.
		fault.write = (regs[REG_ERR] & 2) != 0;
		break;
	case SIGILL: fault.kind = UserFaultKind::illegal_instruction; break;
	case SIGFPE:
		fault.kind = info->si_code == FPE_INTDIV || info->si_code == FPE_INTOVF
				? UserFaultKind::divide_error
				: UserFaultKind::floating_point;
		break;
	case SIGTRAP: fault.kind = UserFaultKind::breakpoint; break;
	}
	return fault;
}

// Hands simulated user code's fault to its task, in kernel mode, with the faulting code's
// signal mask (the task may park and other fibers of this host thread run meanwhile). True:
// retry the faulting access. The task may also never return (it ended the fiber).
bool deliver_to_task(Task &task, const UserFault &fault, const ucontext_t *uc) {
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, nullptr, 8);
	task.set_in_kernel(true);
	const bool retry = task.handle_user_fault(fault);
	task.set_in_kernel(false);
	return retry;
}

void handle_fault(int sig, siginfo_t *info, void *context) {
	const int saved_errno = errno;
	auto *uc = static_cast<ucontext_t *>(context);
	greg_t *regs = uc->uc_mcontext.gregs;
	// si_code > 0: raised by the CPU, not sent by kill() and the like.
	if (info->si_code > 0) {
		const bool memory = sig == SIGSEGV || sig == SIGBUS;
		if (memory) {
			for (const Fixup &f : fixups) {
				if (regs[REG_RIP] == reinterpret_cast<greg_t>(f.fault)) {
					regs[REG_RIP] = reinterpret_cast<greg_t>(f.resume);
					errno = saved_errno;
					return;
				}
			}
		}
		// Read before anything may switch fibers: afterwards this may be another host thread.
		Task *task = user_task();
		const UserFault fault = classify(sig, info, regs);
		FaultResolver *resolver = memory && fault.kind == UserFaultKind::page_fault
				? find_resolver(fault.address)
				: nullptr;
		if (resolver) {
			// The resolver may switch to other fibers of this host thread, which must run
			// with the mask the faulting code had: a sanitizer's wrapper may have installed
			// ours with every signal blocked. (Raw syscall: the kernel's sigset is 8 bytes.)
			syscall(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, nullptr, 8);
			// Kernel mode while it runs: a fault of the resolver itself is helsim's bug.
			if (task)
				task->set_in_kernel(true);
			const bool resolved = resolver->resolve_host_fault(fault.address, fault.write);
			if (task)
				task->set_in_kernel(false);
			if (resolved || (task && deliver_to_task(*task, fault, uc))) {
				restore_errno_after_switch(saved_errno);
				return;
			}
			report_unresolved(sig, fault.address, fault.write, fault.pc, resolver);
			// Dies of the same fault once we return, with the default disposition.
			reset_default(sig);
			restore_errno_after_switch(saved_errno);
			return;
		}
		if (task && deliver_to_task(*task, fault, uc)) {
			restore_errno_after_switch(saved_errno);
			return;
		}
	}
	chain(sig, info, context);
	errno = saved_errno;
}

void install_slow() {
	std::lock_guard lock{install_mutex};
	if (installed.load(std::memory_order_relaxed))
		return;
	// Read the previous handlers before ours can run.
	for (std::size_t i = 0; i < kSignalCount; ++i)
		sigaction(kSignals[i], nullptr, &previous[i]);
	struct sigaction action;
	std::memset(&action, 0, sizeof(action));
	action.sa_sigaction = handle_fault;
	// No SA_ONSTACK: the handler runs on the faulting fiber's stack so that a resolver may
	// switch fibers. SA_NODEFER: another fault on this host thread meanwhile is handled too.
	action.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&action.sa_mask);
	for (int sig : kSignals)
		sigaction(sig, &action, nullptr);
	installed.store(true, std::memory_order_release);
	// A sanitizer told to keep its own handler (ASAN_OPTIONS=handle_segv=2, or
	// allow_user_segv_handler=0) silently ignores ours: say so before the first fault crashes.
	// (SIGILL, SIGFPE and SIGTRAP only matter for simulated threads' faults.)
	for (int sig : {SIGSEGV, SIGBUS}) {
		struct sigaction now;
		std::memset(&now, 0, sizeof(now));
		sigaction(sig, nullptr, &now);
		if (!(now.sa_flags & SA_SIGINFO) || now.sa_sigaction != handle_fault) {
			Line line;
			line.add("helsim: warning: cannot install the ");
			line.add(signal_name(sig));
			line.add(" handler for host faults (a sanitizer with handle_segv=2, handle_sigbus=2 "
					 "or allow_user_segv_handler=0?): faults in safe_copy and in fault windows "
					 "will crash");
			line.flush();
		}
	}
}

inline void install() {
	if (!installed.load(std::memory_order_acquire))
		install_slow();
}

} // namespace

std::size_t safe_copy(void *dst, const void *src, std::size_t n) noexcept {
	install();
	if (n >= kRepMinimum + kRepAlign && (reinterpret_cast<std::uintptr_t>(dst) & (kRepAlign - 1)))
		return safe_copy_unaligned(dst, src, n);
	return helsim_safe_copy_asm(dst, src, n);
}

bool safe_load_u32(const void *p, std::uint32_t &out) noexcept {
	install();
	const std::uint64_t result = helsim_safe_load_u32_asm(p);
	if (!(result >> 32))
		return false;
	out = static_cast<std::uint32_t>(result);
	return true;
}

void register_window(std::uintptr_t base, std::size_t size, FaultResolver *resolver) {
	if (size == 0 || !resolver)
		throw std::invalid_argument("helsim: a fault window needs a size and a resolver");
	install();
	std::lock_guard lock{windows_mutex};
	for (Window &w : windows) {
		if (w.size.load(std::memory_order_relaxed) == 0) {
			write_window(w, base, size, resolver);
			return;
		}
	}
	throw std::length_error("helsim: too many host fault windows");
}

void unregister_window(std::uintptr_t base) {
	std::lock_guard lock{windows_mutex};
	for (Window &w : windows) {
		if (w.size.load(std::memory_order_relaxed) != 0 &&
				w.base.load(std::memory_order_relaxed) == base) {
			write_window(w, 0, 0, nullptr);
			return;
		}
	}
}

} // namespace helsim::sim
