// extension: prototyping new syscalls with helsim/extension.hpp.
//
// Registers two syscalls and a supercall handler on a machine, then calls them from a
// simulated thread through Managarm's raw stubs (helSyscallN_M):
//   300 helsimAdd    synchronous: out0 = arg0 + arg1
//   301 helsimEcho   asynchronous: completes on a queue of the caller with a value it copied
//                    from user memory
//   0x80000000 + n   supercalls: handled by one function, as a POSIX server would observe them
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::uint32_t kCallAdd = 300;
constexpr std::uint32_t kCallEcho = 301;
constexpr std::uint32_t kCallUnregistered = 302;

// args: arg0, arg1. outs: out0 = their sum.
HelError add(helsim::ext::Caller &, const HelWord *args, HelWord *outs) {
	outs[0] = args[0] + args[1];
	return kHelErrNone;
}

// What helsimEcho posts: the usual HelError header, then the value.
struct EchoResult {
	HelError error;
	int reserved;
	std::uint64_t value;
};

// args: queue handle, context, pointer to a std::uint64_t in user memory.
HelError echo(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	std::uint64_t value = 0;
	if (!caller.copy_from_user(&value, reinterpret_cast<const void *>(args[2]), sizeof(value)))
		return kHelErrFault;
	EchoResult result{kHelErrNone, 0, value};
	return caller.complete(static_cast<HelHandle>(args[0]), static_cast<std::uintptr_t>(args[1]),
			std::as_bytes(std::span{&result, 1}));
}

void body(std::span<const HelHandle>) {
	HelWord sum = 0;
	HelError e = helSyscall2_1(kCallAdd, 2, 40, &sum);
	std::printf("helsimAdd(2, 40): error %d, result %llu\n", e,
			static_cast<unsigned long long>(sum));

	helsim::Dispatcher dispatcher;
	std::uint64_t value = 0xC0FFEE;
	e = helSyscall3(kCallEcho, static_cast<HelWord>(dispatcher.queue()), 7,
			reinterpret_cast<HelWord>(&value));
	std::printf("helsimEcho submitted: error %d\n", e);
	helsim::Element element = dispatcher.wait_for(7, [](helsim::Element) {});
	auto result = element.as<EchoResult>();
	std::printf("helsimEcho completed: context %llu, error %d, value %#llx\n",
			static_cast<unsigned long long>(element.context()), result.error,
			static_cast<unsigned long long>(result.value));
	element.release();

	e = helSyscall3(kCallEcho, static_cast<HelWord>(dispatcher.queue()), 8, 0);
	std::printf("helsimEcho with a null pointer: error %d (kHelErrFault is %d)\n", e, kHelErrFault);

	HelWord out = 0;
	e = helSyscall1_1(kHelCallSuper + 7, 5, &out);
	std::printf("supercall 7 (5): error %d, result %llu\n", e,
			static_cast<unsigned long long>(out));

	e = helSyscall0(kCallUnregistered);
	std::printf("unregistered syscall %u: error %d (kHelErrIllegalSyscall is %d)\n",
			kCallUnregistered, e, kHelErrIllegalSyscall);
}

} // namespace

int main() {
	helsim::Machine machine;
	// Register everything before any simulated thread runs.
	helsim::ext::register_syscall(machine, kCallAdd, "helsimAdd", add);
	helsim::ext::register_syscall(machine, kCallEcho, "helsimEcho", echo);
	helsim::ext::set_supercall_handler(machine,
			[](helsim::ext::Caller &caller, std::uint32_t number, const HelWord *args,
					HelWord *outs) -> HelError {
				std::uint32_t n = number - static_cast<std::uint32_t>(kHelCallSuper);
				std::printf("supercall %u from thread \"%s\" on CPU %u\n", n,
						caller.thread_name().c_str(), caller.cpu());
				outs[0] = args[0] * n;
				return kHelErrNone;
			});

	machine.spawn("caller", body);
	helsim::RunReport report = machine.run();
	// The report counts calls of extension syscalls by their registered names.
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	return report.stuck || !report.leaks.empty() ? 1 : 0;
}
