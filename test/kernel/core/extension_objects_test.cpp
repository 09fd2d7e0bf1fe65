// Extension objects (helsim/extension.hpp, "Object kinds"): registering a kind, creating,
// attaching and resolving its objects, their rights across transfers, and their teardown.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using helsim::kFirstExtensionSyscall;
using helsim::ext::Caller;
using helsim::ext::kind_right;

constexpr std::uint32_t kPoke = kind_right(0);
constexpr std::uint32_t kPeek = kind_right(15);
constexpr int kProbeDesc = 4242;

std::atomic<int> g_destroyed{0};
std::atomic<int> g_abandoned{0};

class Probe : public helsim::ext::KernelObject {
public:
	~Probe() override { g_destroyed.fetch_add(1); }
	void abandon() override { g_abandoned.fetch_add(1); }
};

class Other final : public helsim::ext::KernelObject {};

// A reference an extension keeps past its syscall (HoldProbe / DropProbe), as the base class.
helsim::ext::ObjectRef<helsim::ext::KernelObject> g_held;

constexpr std::uint32_t kCreateProbe = kFirstExtensionSyscall + 40;
constexpr std::uint32_t kCreateOther = kFirstExtensionSyscall + 41;
constexpr std::uint32_t kResolveProbe = kFirstExtensionSyscall + 42;
constexpr std::uint32_t kResolveOther = kFirstExtensionSyscall + 43;
constexpr std::uint32_t kHoldProbe = kFirstExtensionSyscall + 44;
constexpr std::uint32_t kDropProbe = kFirstExtensionSyscall + 45;
constexpr std::uint32_t kCreateBuiltin = kFirstExtensionSyscall + 46;
constexpr std::uint32_t kResolveAny = kFirstExtensionSyscall + 48;

template <typename T>
HelError create(Caller &caller, const char *kind_name, const HelWord *args, HelWord *outs) {
	auto kind = caller.object_kind(kind_name);
	if (!kind)
		return kHelErrIllegalState;
	auto object = caller.create<T>(*kind);
	HelHandle handle;
	HelError e = args[0] ? caller.attach(*object, static_cast<std::uint32_t>(args[1]), handle)
						 : caller.attach(*object, handle);
	outs[0] = static_cast<HelWord>(handle);
	return e;
}

// args: 0 for the kind's default rights, else 1 and the rights.
HelError create_probe(Caller &caller, const HelWord *args, HelWord *outs) {
	return create<Probe>(caller, "probe", args, outs);
}

HelError create_other(Caller &caller, const HelWord *args, HelWord *outs) {
	return create<Other>(caller, "other", args, outs);
}

// args: handle, required rights. outs: the descriptor's rights.
template <typename T>
HelError resolve(Caller &caller, const HelWord *args, HelWord *outs) {
	auto r =
			caller.resolve<T>(static_cast<HelHandle>(args[0]), static_cast<std::uint32_t>(args[1]));
	if (!r)
		return r.error;
	EXPECT_TRUE(r.object);
	outs[0] = r.rights;
	return kHelErrNone;
}

HelError hold_probe(Caller &caller, const HelWord *args, HelWord *) {
	auto r = caller.resolve<Probe>(static_cast<HelHandle>(args[0]), 0);
	if (!r)
		return r.error;
	g_held = std::move(r.object);
	return kHelErrNone;
}

HelError drop_probe(Caller &, const HelWord *, HelWord *) {
	g_held = {};
	return kHelErrNone;
}

// Creates an object with a built-in kind, which Caller::create refuses.
HelError create_builtin(Caller &caller, const HelWord *, HelWord *) {
	auto thread_kind = caller.object_kind("thread");
	if (!thread_kind)
		return kHelErrIllegalState;
	try {
		caller.create<Probe>(*thread_kind);
	} catch (const std::invalid_argument &) {
		return kHelErrIllegalArgs;
	}
	return kHelErrNone;
}

void install(helsim::Machine &machine) {
	g_destroyed = 0;
	g_abandoned = 0;
	helsim::ext::register_object_kind(machine,
			{.name = "probe",
					.rights = kPoke | kPeek,
					.default_rights = kHelRightGrant | kPoke,
					.descriptor_type = kProbeDesc});
	helsim::ext::register_object_kind(machine, {.name = "other"});
	helsim::ext::register_syscall(machine, kCreateProbe, "createProbe", create_probe);
	helsim::ext::register_syscall(machine, kCreateOther, "createOther", create_other);
	helsim::ext::register_syscall(machine, kResolveProbe, "resolveProbe", resolve<Probe>);
	helsim::ext::register_syscall(machine, kResolveOther, "resolveOther", resolve<Other>);
	helsim::ext::register_syscall(machine, kResolveAny, "resolveAny",
			resolve<helsim::ext::KernelObject>);
	helsim::ext::register_syscall(machine, kHoldProbe, "holdProbe", hold_probe);
	helsim::ext::register_syscall(machine, kDropProbe, "dropProbe", drop_probe);
	helsim::ext::register_syscall(machine, kCreateBuiltin, "createBuiltin", create_builtin);
}

HelHandle create_probe(std::uint32_t rights) {
	HelWord out = 0;
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kCreateProbe), 1, rights, &out), kHelErrNone);
	return static_cast<HelHandle>(out);
}

HelError resolve_probe(HelHandle handle, std::uint32_t required, std::uint32_t &rights) {
	HelWord out = 0;
	HelError e = helSyscall2_1(static_cast<int>(kResolveProbe), static_cast<HelWord>(handle),
			required, &out);
	rights = static_cast<std::uint32_t>(out);
	return e;
}

HelHandle transfer(HelHandle handle, std::uint32_t exposed) {
	HelHandle copy = kHelNullHandle;
	EXPECT_EQ(helTransferDescriptor(handle, kHelThisUniverse, kHelTransferDescriptorOut, exposed, 0,
					  &copy),
			kHelErrNone);
	return copy;
}

TEST(ExtensionObjects, RegisterObjectKindRejectsBadSpecs) {
	helsim::Machine machine;
	using helsim::ext::register_object_kind;
	EXPECT_THROW(register_object_kind(machine, {.name = ""}), std::invalid_argument);
	EXPECT_THROW(register_object_kind(machine, {.name = "thread"}), std::invalid_argument)
			<< "a built-in's name";
	EXPECT_THROW(register_object_kind(machine, {.name = "hel bits", .rights = kHelRightRead}),
			std::invalid_argument)
			<< "kHelRight* bits are hel's, not a kind's";
	EXPECT_THROW(register_object_kind(machine,
						 {.name = "bad default",
								 .rights = kind_right(0),
								 .default_rights = kind_right(1)}),
			std::invalid_argument);
	auto first = register_object_kind(machine, {.name = "first"});
	EXPECT_THROW(register_object_kind(machine, {.name = "first"}), std::invalid_argument);
	EXPECT_NE(register_object_kind(machine, {.name = "second"}), first);
	int added = 2;
	try {
		for (;; ++added)
			register_object_kind(machine, {.name = "filler " + std::to_string(added)});
	} catch (const std::length_error &) {
	}
	EXPECT_GE(added, 40) << "room for dozens of kinds beside the built-ins";
}

TEST(ExtensionObjects, AttachGivesDefaultOrNarrowedRightsAndInfoReportsTheType) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	HelWord out = 0;
	ASSERT_EQ(helSyscall2_1(static_cast<int>(kCreateProbe), 0, 0, &out), kHelErrNone);
	auto defaulted = static_cast<HelHandle>(out);
	helsim::ext::DescriptorInfo info{};
	ASSERT_EQ(helsim::ext::describe_descriptor(defaulted, info), kHelErrNone);
	EXPECT_EQ(info.type, kProbeDesc);
	EXPECT_EQ(info.rights, kHelRightGrant | kPoke);
	HelDescriptorInfo hel_info{};
	ASSERT_EQ(helDescriptorInfo(defaulted, &hel_info), kHelErrNone);
	EXPECT_EQ(hel_info.type, kProbeDesc);

	// Bits that are neither hel's nor the kind's are dropped.
	HelHandle all = create_probe(kHelRightsMax);
	ASSERT_EQ(helsim::ext::describe_descriptor(all, info), kHelErrNone);
	EXPECT_EQ(info.rights, ((std::uint32_t{1} << 14) - 1) | kPoke | kPeek);
	std::uint32_t rights = 0;
	ASSERT_EQ(resolve_probe(all, kPoke | kPeek | kHelRightRead, rights), kHelErrNone);
	EXPECT_EQ(rights, info.rights);

	// A built-in handle never carries a kind's bits, whatever was exposed.
	HelHandle token;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	ASSERT_EQ(helsim::ext::describe_descriptor(transfer(token, kHelRightsMax), info), kHelErrNone);
	EXPECT_EQ(info.rights, kHelRightNull);
}

TEST(ExtensionObjects, ResolveChecksTheHandleThenTheKindThenTheRights) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	HelHandle probe = create_probe(kPoke);
	HelWord out = 0;
	ASSERT_EQ(helSyscall2_1(static_cast<int>(kCreateOther), 0, 0, &out), kHelErrNone);
	auto other = static_cast<HelHandle>(out);
	HelHandle token;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	std::uint32_t rights = 0;
	EXPECT_EQ(resolve_probe(kHelNullHandle, 0, rights), kHelErrNoDescriptor);
	EXPECT_EQ(resolve_probe(-5, 0, rights), kHelErrNoDescriptor);
	EXPECT_EQ(resolve_probe(1 << 30, 0, rights), kHelErrNoDescriptor);
	EXPECT_EQ(resolve_probe(token, 0, rights), kHelErrBadDescriptor) << "a built-in object";
	EXPECT_EQ(resolve_probe(other, kPeek, rights), kHelErrBadDescriptor)
			<< "another extension kind, before the rights";
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kResolveOther), static_cast<HelWord>(probe), 0, &out),
			kHelErrBadDescriptor);
	// A base class resolves every object derived from it, and only those.
	ASSERT_EQ(helSyscall2_1(static_cast<int>(kResolveAny), static_cast<HelWord>(probe), kPoke,
					  &out),
			kHelErrNone);
	EXPECT_EQ(out, kPoke);
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kResolveAny), static_cast<HelWord>(token), 0, &out),
			kHelErrBadDescriptor);
	EXPECT_EQ(resolve_probe(probe, kPeek, rights), kHelErrBadRights);
	EXPECT_EQ(resolve_probe(probe, kPoke | kHelRightGrant, rights), kHelErrBadRights);
	ASSERT_EQ(resolve_probe(probe, kPoke, rights), kHelErrNone);
	EXPECT_EQ(rights, kPoke);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, probe), kHelErrNone);
	EXPECT_EQ(resolve_probe(probe, 0, rights), kHelErrNoDescriptor) << "a closed handle";
}

TEST(ExtensionObjects, RightsNeverGrowAcrossTransfers) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	HelHandle probe = create_probe(kPoke | kPeek | kHelRightGrant);
	HelHandle peek_only = transfer(probe, kPeek);
	std::uint32_t rights = 0;
	ASSERT_EQ(resolve_probe(peek_only, 0, rights), kHelErrNone);
	EXPECT_EQ(rights, kPeek);
	ASSERT_EQ(resolve_probe(transfer(peek_only, kHelRightsMax), 0, rights), kHelErrNone);
	EXPECT_EQ(rights, kPeek);
	HelHandle copy = kHelNullHandle;
	EXPECT_EQ(helTransferDescriptor(peek_only, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax, kPoke, &copy),
			kHelErrBadRights)
			<< "requiring a right the source lacks";
}

TEST(ExtensionObjects, TeardownHookRunsOnceWhenTheLastHandleAndReferenceGo) {
	helsim::Machine machine;
	install(machine);
	{
		auto attached = machine.attach();
		HelHandle first = create_probe(kPoke);
		HelHandle second = transfer(first, kHelRightsMax);
		HelHandle universe;
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		HelHandle inside = kHelNullHandle;
		ASSERT_EQ(helTransferDescriptor(first, universe, kHelTransferDescriptorOut, kPoke, 0,
						  &inside),
				kHelErrNone);
		ASSERT_EQ(helSyscall1(static_cast<int>(kHoldProbe), static_cast<HelWord>(first)),
				kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, first), kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, second), kHelErrNone);
		EXPECT_EQ(g_destroyed.load(), 0) << "a handle in another universe is left";
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, universe), kHelErrNone);
		EXPECT_EQ(g_destroyed.load(), 0) << "the extension still holds a reference";
		ASSERT_EQ(helSyscall0(static_cast<int>(kDropProbe)), kHelErrNone);
		EXPECT_EQ(g_destroyed.load(), 1);
	}
	auto report = machine.run();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(g_destroyed.load(), 1);
	EXPECT_EQ(g_abandoned.load(), 0) << "abandon is for objects alive at machine teardown";
}

TEST(ExtensionObjects, MachineTeardownAbandonsThenDestroysLiveObjectsOnce) {
	{
		helsim::Machine machine;
		install(machine);
		auto attached = machine.attach();
		// A universe that holds itself and a probe: alive until the machine goes.
		HelHandle universe = kHelNullHandle, out = kHelNullHandle;
		ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
		HelHandle probe = create_probe(kPoke);
		ASSERT_EQ(helTransferDescriptor(probe, universe, kHelTransferDescriptorOut, kPoke, 0, &out),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(universe, universe, kHelTransferDescriptorOut,
						  kHelRightsMax, 0, &out),
				kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, universe), kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, probe), kHelErrNone);
		attached.reset();
		auto report = machine.run();
		ASSERT_EQ(report.leaks.size(), 2u) << report.to_string();
		EXPECT_EQ(g_destroyed.load(), 0);
	}
	EXPECT_EQ(g_abandoned.load(), 1);
	EXPECT_EQ(g_destroyed.load(), 1);
}

TEST(ExtensionObjects, CreateWithABuiltinKindThrows) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	EXPECT_EQ(helSyscall0(static_cast<int>(kCreateBuiltin)), kHelErrIllegalArgs);
	EXPECT_EQ(g_destroyed.load(), 1) << "the object made for the refused kind is destroyed";
}

TEST(ExtensionObjects, ObjectKindFindsExtensionAndBuiltinKindsByName) {
	helsim::Machine machine;
	install(machine);
	helsim::ext::register_syscall(machine, kFirstExtensionSyscall + 47, "findKinds",
			[](Caller &caller, const HelWord *, HelWord *outs) -> HelError {
				auto p = caller.object_kind("probe");
				auto o = caller.object_kind("other");
				outs[0] = p && o && !(*p == *o);
				outs[1] = caller.object_kind("no such kind").has_value();
				return kHelErrNone;
			});
	auto attached = machine.attach();
	HelWord outs[3] = {};
	HelWord args[9] = {};
	ASSERT_EQ(helsim_syscall(kFirstExtensionSyscall + 47, args, outs), kHelErrNone);
	EXPECT_EQ(outs[0], 1u);
	EXPECT_EQ(outs[1], 0u);
}

TEST(ExtensionObjects, ObjectCountsNameTheKind) {
	helsim::Machine machine;
	install(machine);
	{
		auto attached = machine.attach();
		helCloseDescriptor(kHelThisUniverse, create_probe(kPoke));
		create_probe(kPoke);
	}
	auto report = machine.run();
	bool found = false;
	for (const auto &count : report.counters.objects)
		if (count.kind == "probe") {
			found = true;
			EXPECT_EQ(count.created, 2u);
			EXPECT_EQ(count.live, 1u);
		}
	EXPECT_TRUE(found) << report.counters.to_table();
	EXPECT_NE(report.counters.to_table().find("probe"), std::string::npos);
}

} // namespace
