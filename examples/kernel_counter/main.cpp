// kernel_counter: a new object kind with rights of its own (kernel_counter.hpp).
//
// The host creates a counter and gives two threads a copy that may only add. Each adds 100
// times; each one's attempt to read or reset is refused (kHelErrBadRights). The host then
// reads 200 through its own handle, which has every right. Exits non-zero unless every
// result is the expected one and nothing leaked.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <span>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "kernel_counter.hpp"

namespace {

constexpr std::uint64_t kAdds = 100;

std::atomic<bool> g_ok{true};

void check(bool ok, const char *what) {
	std::printf("%-48s %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		g_ok = false;
}

void adder(std::span<const HelHandle> handles) {
	std::uint64_t value = 0;
	bool added = true;
	for (std::uint64_t i = 0; i < kAdds; ++i)
		added = added && kernel_counter::add(handles[0], 1, value) == kHelErrNone;
	check(added, "adder: 100 adds");
	check(kernel_counter::read(handles[0], value) == kHelErrBadRights,
			"adder: read refused (kHelErrBadRights)");
	check(kernel_counter::reset(handles[0], value) == kHelErrBadRights,
			"adder: reset refused (kHelErrBadRights)");
}

} // namespace

int main() {
	helsim::Machine machine; // HELSIM_MODE=deterministic:7 selects deterministic mode
	kernel_counter::install(machine);

	HelHandle counter = kHelNullHandle, add_only = kHelNullHandle;
	{
		auto host = machine.attach();
		check(kernel_counter::create(0, counter) == kHelErrNone, "host: create a counter");
		check(helTransferDescriptor(counter, kHelThisUniverse, kHelTransferDescriptorOut,
					  kernel_counter::kRightAdd, 0, &add_only) == kHelErrNone,
				"host: copy it with the add right only");
	}
	machine.spawn("adder-1", adder, {add_only});
	machine.spawn("adder-2", adder, {add_only});
	helsim::RunReport report = machine.run();
	check(!report.stuck, "both adders ran to their end");

	{
		auto host = machine.attach();
		std::uint64_t value = 0;
		check(kernel_counter::read(counter, value) == kHelErrNone && value == 2 * kAdds,
				"host: reads 200");
		check(kernel_counter::reset(counter, value) == kHelErrNone && value == 2 * kAdds,
				"host: reset returns 200");
		helCloseDescriptor(kHelThisUniverse, add_only);
		helCloseDescriptor(kHelThisUniverse, counter);
	}
	report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	check(!report.stuck && report.leaks.empty(), "nothing stuck, nothing leaked");
	return g_ok ? 0 : 1;
}
