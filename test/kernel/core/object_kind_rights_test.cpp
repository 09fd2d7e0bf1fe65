// The object-kind rows and the built-ins' creation paths agree: for every built-in kind that a
// descriptor can name, a freshly created object's first handle has exactly the default rights
// and the descriptor type of its kind's row, as helsim::ext::describe_descriptor reports them.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/kernlet.hpp>
#include <helsim/machine.hpp>

#include "../../support.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/object_kinds.hpp"

namespace {

using helsim::kernel::ObjectKind;

constexpr unsigned kGsi = 7;

struct Fresh {
	ObjectKind kind;
	HelHandle handle;
	std::string how;
};

void idle_entry(std::uintptr_t) {}

helsim::KernletResult no_irq(helsim::KernletContext &) { return helsim::KernletResult::nacked; }

// Creates one object of each built-in kind through its own creation path (a syscall, an SQ
// operation, or for a kernlet the host API) and lists the first handle to it.
std::vector<Fresh> create_one_of_each(HelHandle token, HelHandle kernlet) {
	std::vector<Fresh> fresh;
	auto add = [&](ObjectKind kind, HelError error, HelHandle handle, const char *how) {
		EXPECT_EQ(error, kHelErrNone) << how;
		fresh.push_back({kind, handle, how});
	};
	HelHandle h = kHelNullHandle, h2 = kHelNullHandle;
	HelError e = helCreateUniverse(&h);
	add(ObjectKind::universe, e, h, "helCreateUniverse");
	HelQueueParameters params{0, 4, 256, 0};
	e = helCreateQueue(&params, &h);
	add(ObjectKind::queue, e, h, "helCreateQueue");
	HelHandle memory = kHelNullHandle;
	e = helAllocateMemory(4096, 0, nullptr, &memory);
	add(ObjectKind::memory_view, e, memory, "helAllocateMemory");
	e = helCreateSliceView(memory, 0, 4096, 0, &h);
	add(ObjectKind::memory_slice, e, h, "helCreateSliceView");
	e = helCreateSwapSpace(0, &h, &h2);
	add(ObjectKind::memory_view, e, h, "helCreateSwapSpace's backing");
	add(ObjectKind::swap_space, e, h2, "helCreateSwapSpace");
	e = helCreateSpace(&h);
	add(ObjectKind::address_space, e, h, "helCreateSpace");
	e = helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
			reinterpret_cast<void *>(&idle_entry), nullptr, 0, &h);
	add(ObjectKind::thread, e, h, "helCreateThread");
	e = helCreateStream(&h, &h2, 0);
	add(ObjectKind::lane, e, h, "helCreateStream's first lane");
	add(ObjectKind::lane, e, h2, "helCreateStream's second lane");
	e = helCreateToken(&h);
	add(ObjectKind::token, e, h, "helCreateToken");
	e = helCreateOneshotEvent(&h);
	add(ObjectKind::oneshot_event, e, h, "helCreateOneshotEvent");
	HelHandle bitset = kHelNullHandle;
	e = helCreateBitsetEvent(&bitset);
	add(ObjectKind::bitset_event, e, bitset, "helCreateBitsetEvent");
	HelHandle pin = kHelNullHandle;
	e = helAccessIrq(token, kHelAccessIrqByGsi, 0, kGsi, &pin);
	add(ObjectKind::irq_pin, e, pin, "helAccessIrq");
	e = helHandleIrq(pin, &h);
	add(ObjectKind::irq, e, h, "helHandleIrq");
	add(ObjectKind::kernlet_object, kHelErrNone, kernlet, "register_kernlet");
	HelKernletData data[3];
	data[0].handle = memory;
	data[1].handle = 0;
	data[2].handle = bitset;
	e = helBindKernlet(kernlet, data, 3, &h);
	add(ObjectKind::bound_kernlet, e, h, "helBindKernlet");
	e = helCreateDmaSpace(0, &h);
	add(ObjectKind::dma_space, e, h, "helCreateDmaSpace");
	std::uintptr_t ports[] = {0x60};
	e = helAccessIo(token, ports, 1, &h);
	add(ObjectKind::io_space, e, h, "helAccessIo");

	helsim::Dispatcher d;
	d.submit(kHelSubmitLockMemoryView, 1, HelSqLockMemoryView{memory, 0, 4096});
	helsim::Element element = d.wait_for(1, [](helsim::Element) {});
	auto lock = element.as<HelHandleResult>();
	add(ObjectKind::memory_view_lock, lock.error, lock.handle, "kHelSubmitLockMemoryView");
	return fresh;
}

TEST(ObjectKindRights, FreshHandlesHaveTheirKindsDefaultRights) {
	helsim::Machine machine;
	HelHandle token = machine.hardware_access_token();
	HelHandle kernlet = helsim::register_kernlet(machine, "no irq",
			{helsim::KernletParameter::memory_view, helsim::KernletParameter::offset,
					helsim::KernletParameter::bitset_event},
			no_irq);
	const helsim::kernel::ObjectKinds &kinds = machine.kernel_for_extensions().kinds();
	std::set<ObjectKind> covered;
	machine.spawn("creator",
			[&](std::span<const HelHandle> h) {
				for (const Fresh &f : create_one_of_each(h[0], h[1])) {
					const helsim::kernel::KindRow &row = kinds[f.kind];
					helsim::ext::DescriptorInfo info = helsim::test::info_of(f.handle);
					EXPECT_EQ(info.type, row.descriptor_type) << f.how << " (" << row.name << ")";
					EXPECT_EQ(info.rights, row.default_rights) << f.how << " (" << row.name << ")";
					covered.insert(f.kind);
				}
			},
			{token, kernlet});
	helsim::test::expect_clean(machine.run());
	// Every built-in kind but the stream, which no descriptor names (handles name its lanes).
	for (std::size_t i = 0; i + 1 < helsim::kernel::kBuiltinKinds; ++i)
		EXPECT_TRUE(covered.contains(static_cast<ObjectKind>(i)))
				<< kinds[static_cast<ObjectKind>(i)].name;
	EXPECT_EQ(static_cast<std::size_t>(ObjectKind::stream) + 1, helsim::kernel::kBuiltinKinds);
}

} // namespace
