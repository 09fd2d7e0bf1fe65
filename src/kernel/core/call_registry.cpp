#include "kernel/core/call_registry.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kernel/core/kernel.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {

// An extension row's entry point: a stub per number, so that the dispatch calls every row the
// same way (one indirect call, no test of the row's kind); the stub finds its handler by the
// number it was instantiated for.
template <std::uint32_t Number>
HelError extension_syscall(Thread &self, const HelWord *args, HelWord *outs) {
	ext::Caller caller{self};
	return self.kernel().calls().syscall_row(Number).handler(caller, args, outs);
}

// The payload is the user's ring: the handler gets its own copy, read once.
template <std::uint32_t Opcode>
HelError extension_sq_opcode(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length) {
	const SqRow &row = self.kernel().calls().sq_opcode_row(Opcode);
	std::vector<std::byte> copy(payload, payload + length);
	ext::Caller caller{self};
	return row.handler(caller, ext::SqSubmission{self, queue, context, copy, row.result_size});
}

template <std::size_t... I>
constexpr std::array<SyscallFn, sizeof...(I)> syscall_stubs(std::index_sequence<I...>) {
	return {&extension_syscall<kFirstExtensionSyscall + static_cast<std::uint32_t>(I)>...};
}
template <std::size_t... I>
constexpr std::array<SqFn, sizeof...(I)> sq_stubs(std::index_sequence<I...>) {
	return {&extension_sq_opcode<ext::kFirstExtensionSqOpcode + static_cast<std::uint32_t>(I)>...};
}

constexpr auto kSyscallStubs =
		syscall_stubs(std::make_index_sequence<kSyscallSlots - kFirstExtensionSyscall>{});
constexpr auto kSqStubs =
		sq_stubs(std::make_index_sequence<ext::kSqOpcodeSlots - ext::kFirstExtensionSqOpcode>{});

template <typename Row>
void check_entry(const Row &row, const char *what) {
	if (!row.fn == !row.handler)
		throw std::invalid_argument(fmt::format("helsim: {} {}: {}", what, row.name,
				row.fn ? "a built-in row takes no handler" : "no handler"));
}

} // namespace

void CallRegistry::add_syscall(std::uint32_t number, SyscallRow row) {
	if (!row.fn && (number < kFirstExtensionSyscall || number >= kSyscallSlots))
		throw std::invalid_argument(
				fmt::format("helsim: extension syscall numbers must lie in [{}, {}), got {}",
						kFirstExtensionSyscall, kSyscallSlots, number));
	if (number >= kSyscallSlots)
		throw std::invalid_argument(
				fmt::format("helsim: syscall number {} is not below {}", number, kSyscallSlots));
	check_entry(row, "syscall");
	SyscallFn entry = row.fn ? row.fn : kSyscallStubs[number - kFirstExtensionSyscall];
	std::lock_guard lock{mutex_};
	if (syscall_entries_[number].load(std::memory_order_relaxed))
		throw std::invalid_argument(fmt::format("helsim: syscall {} is already registered as {}",
				number, syscalls_[number].name));
	syscalls_[number] = std::move(row);
	syscall_entries_[number].store(entry, std::memory_order_release);
}

void CallRegistry::add_sq_opcode(std::uint32_t opcode, SqRow row) {
	if (!row.fn && (opcode < ext::kFirstExtensionSqOpcode || opcode >= ext::kSqOpcodeSlots))
		throw std::invalid_argument(
				fmt::format("helsim: extension SQ opcodes must lie in [{}, {}), got {}",
						ext::kFirstExtensionSqOpcode, ext::kSqOpcodeSlots, opcode));
	if (opcode >= ext::kSqOpcodeSlots)
		throw std::invalid_argument(
				fmt::format("helsim: SQ opcode {} is not below {}", opcode, ext::kSqOpcodeSlots));
	check_entry(row, "SQ opcode");
	SqFn entry = row.fn ? row.fn : kSqStubs[opcode - ext::kFirstExtensionSqOpcode];
	std::lock_guard lock{mutex_};
	SqEntry &slot = sq_entries_[opcode];
	if (slot.fn.load(std::memory_order_relaxed))
		throw std::invalid_argument(fmt::format("helsim: SQ opcode {} is already registered as {}",
				opcode, sq_rows_[opcode].name));
	slot.element_size = sizeof(HelElement) + pad8(row.result_size);
	sq_rows_[opcode] = std::move(row);
	slot.fn.store(entry, std::memory_order_release);
}

std::string CallRegistry::syscall_name(std::uint32_t number) const {
	if (number >= kSyscallSlots || !syscall_entry(number))
		return {};
	return syscalls_[number].name;
}

HelError CallRegistry::submit(Thread &self, IpcQueue &queue, unsigned opcode,
		std::uintptr_t context, const std::byte *payload, std::size_t length) {
	if (opcode >= ext::kSqOpcodeSlots)
		return kHelErrIllegalSyscall;
	const SqEntry &entry = queue.kernel().calls().sq_entries_[opcode];
	SqFn fn = entry.fn.load(std::memory_order_acquire);
	if (!fn)
		return kHelErrIllegalSyscall;
	if (entry.element_size > queue.chunk_size())
		return kHelErrQueueTooSmall;
	return fn(self, queue, context, payload, length);
}

} // namespace helsim::kernel
