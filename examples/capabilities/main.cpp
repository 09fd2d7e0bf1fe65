// capabilities: universes, descriptor transfer with narrowed rights, helDescriptorInfo, and
// the errors a handle lookup gives (kHelErrNoDescriptor, kHelErrBadDescriptor,
// kHelErrBadRights).
//
// The host thread attaches itself to the machine (it then lives in the root universe), makes
// a queue, copies it into a second universe with only kHelRightInvoke, copies it back and
// shows what the narrowed copy may and may not do. Then a spawned thread receives the
// narrowed handle and inspects it from inside its own universe.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

const char *error_name(HelError e) {
	switch (e) {
	case kHelErrNone: return "kHelErrNone";
	case kHelErrNoDescriptor: return "kHelErrNoDescriptor";
	case kHelErrBadDescriptor: return "kHelErrBadDescriptor";
	case kHelErrBadRights: return "kHelErrBadRights";
	case kHelErrIllegalArgs: return "kHelErrIllegalArgs";
	default: return "another HelError";
	}
}

const char *type_name(int type) {
	switch (type) {
	case kHelDescUniverse: return "universe";
	case kHelDescQueue: return "queue";
	case kHelDescAddressSpace: return "address space";
	case kHelDescThread: return "thread";
	case kHelDescToken: return "token";
	default: return "other";
	}
}

std::string rights_string(std::uint32_t rights) {
	static const char *const names[] = {"Grant", "Take", "Read", "Write", "Execute", "Invoke",
			"Assign", "Derive", "Provision", "Pin", "Fence", "Wait", "Signal", "Manage"};
	std::string out;
	for (unsigned bit = 0; bit < 14; ++bit) {
		if (rights & (1u << bit)) {
			if (!out.empty())
				out += '|';
			out += names[bit];
		}
	}
	return out.empty() ? "none" : out;
}

void show(const char *label, HelHandle handle) {
	// helDescriptorInfo reports the type only; helsim's debug call adds the rights.
	helsim::ext::DescriptorInfo info{};
	HelError e = helsim::ext::describe_descriptor(handle, info);
	if (e != kHelErrNone) {
		std::printf("  %-28s handle %-3lld -> %s\n", label, static_cast<long long>(handle),
				error_name(e));
		return;
	}
	std::printf("  %-28s handle %-3lld %-8s rights %s\n", label, static_cast<long long>(handle),
			type_name(info.type), rights_string(info.rights).c_str());
}

void expect(const char *what, HelError got) {
	std::printf("  %-52s -> %s\n", what, error_name(got));
}

} // namespace

int main() {
	helsim::Machine machine;
	HelHandle narrowed = kHelNullHandle;
	{
		auto attachment = machine.attach();
		std::printf("host thread, attached to the root universe:\n");

		HelQueueParameters params{0, 2, 4096, 0};
		HelHandle queue = kHelNullHandle;
		HelHandle universe = kHelNullHandle;
		HelHandle token = kHelNullHandle;
		helCreateQueue(&params, &queue);
		helCreateUniverse(&universe);
		helCreateToken(&token);
		show("queue", queue);
		show("universe", universe);
		show("token", token);

		// Copy the queue into `universe` (Out needs Grant on the universe), exposing only
		// Invoke, then take the copy back (In needs Take).
		HelHandle in_other = kHelNullHandle;
		helTransferDescriptor(queue, universe, kHelTransferDescriptorOut, kHelRightInvoke, 0,
				&in_other);
		std::printf("  copied into the other universe as handle %lld (Invoke only)\n",
				static_cast<long long>(in_other));
		helTransferDescriptor(in_other, universe, kHelTransferDescriptorIn, kHelRightsMax, 0,
				&narrowed);
		show("narrowed copy, taken back", narrowed);

		std::printf("what the narrowed copy may do:\n");
		expect("helDriveQueue(narrowed, 0, 0)  [Invoke]", helDriveQueue(narrowed, 0, 0));
		expect("helDriveQueue(narrowed, kHelDriveWait, 0)  [Invoke+Wait]",
				helDriveQueue(narrowed, kHelDriveWait, 0));
		expect("helAlertQueue(narrowed)  [Signal]", helAlertQueue(narrowed));
		HelHandle unused = kHelNullHandle;
		expect("transfer requiring Signal from Invoke-only",
				helTransferDescriptor(narrowed, kHelThisUniverse, kHelTransferDescriptorOut,
						kHelRightsMax, kHelRightSignal, &unused));
		expect("helAlertQueue(queue)  [full rights]", helAlertQueue(queue));

		std::printf("handles that do not name a queue:\n");
		expect("helAlertQueue(universe)  [wrong type]", helAlertQueue(universe));
		expect("helAlertQueue(12345)  [never handed out]", helAlertQueue(12345));
		expect("helCloseDescriptor(kHelThisUniverse, token)",
				helCloseDescriptor(kHelThisUniverse, token));
		expect("helAlertQueue(token)  [closed]", helAlertQueue(token));
		HelHandle fresh = kHelNullHandle;
		helCreateToken(&fresh);
		std::printf("  a new token gets handle %lld; closed handle %lld is never reused\n",
				static_cast<long long>(fresh), static_cast<long long>(token));
		expect("helTransferDescriptor with flags Out|In",
				helTransferDescriptor(queue, universe,
						kHelTransferDescriptorOut | kHelTransferDescriptorIn, kHelRightsMax, 0,
						&unused));

		helCloseDescriptor(kHelThisUniverse, fresh);
		helCloseDescriptor(kHelThisUniverse, universe);
		helCloseDescriptor(kHelThisUniverse, queue);
		// `narrowed` stays open in the root universe: spawn() copies it below.
	}

	// spawn() copies root-universe handles into the new thread's universe, rights included.
	machine.spawn("child",
			[](std::span<const HelHandle> handles) {
				std::printf("child thread, in a universe of its own:\n");
				show("received queue", handles[0]);
				expect("helAlertQueue(received)  [Signal]", helAlertQueue(handles[0]));
			},
			{narrowed});
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	return report.stuck || !report.leaks.empty() ? 1 : 0;
}
