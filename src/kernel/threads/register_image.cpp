#include "kernel/threads/register_image.hpp"

#include <algorithm>

namespace helsim::kernel {

namespace {

constexpr char kTrapContinuation = 0;

// The Signal set (thor's x86-64 signal frame order): r8..r15, rdi, rsi, rbp, rbx, rdx, rax,
// rcx, then rsp, rip, rflags, cs.
constexpr std::array<int, 15> kSignalGprs{kHelRegR8, kHelRegR9, kHelRegR10, kHelRegR11, kHelRegR12,
		kHelRegR13, kHelRegR14, kHelRegR15, kHelRegRdi, kHelRegRsi, kHelRegRbp, kHelRegRbx,
		kHelRegRdx, kHelRegRax, kHelRegRcx};
constexpr std::size_t kSignalWords = kSignalGprs.size() + 4;

} // namespace

HelWord trap_continuation_ip() { return reinterpret_cast<HelWord>(&kTrapContinuation); }

HelError register_set_size(int set, bool loadable, std::size_t &size) {
	switch (set) {
	case kHelRegsProgram: size = 2 * sizeof(HelWord); return kHelErrNone;
	case kHelRegsGeneral: size = kHelNumGprs * sizeof(HelWord); return kHelErrNone;
	case kHelRegsThread: size = 2 * sizeof(HelWord); return kHelErrNone;
	// A simulated thread runs host code whose vector registers the host saves at each fiber
	// switch: there is no image of them to load or store.
	case kHelRegsSimd: size = 0; return kHelErrNone;
	case kHelRegsSignal: size = kSignalWords * sizeof(HelWord); return kHelErrNone;
	case kHelRegsPageFault:
		if (!loadable)
			return kHelErrIllegalArgs;
		size = 2 * sizeof(HelWord);
		return kHelErrNone;
	default: return kHelErrIllegalArgs; // Debug, Virtualization (a vcpu's), unknown sets
	}
}

void load_register_set(const RegisterImage &image, int set, HelWord *words) {
	switch (set) {
	case kHelRegsProgram:
		words[kHelRegIp] = image.ip;
		words[kHelRegSp] = image.sp;
		break;
	case kHelRegsGeneral: std::copy(image.general.begin(), image.general.end(), words); break;
	case kHelRegsThread:
		words[0] = image.fs;
		words[1] = image.gs;
		break;
	case kHelRegsSignal:
		for (std::size_t i = 0; i < kSignalGprs.size(); ++i)
			words[i] = image.general[kSignalGprs[i]];
		words[15] = image.sp;
		words[16] = image.ip;
		words[17] = image.rflags;
		words[18] = image.cs;
		break;
	case kHelRegsPageFault:
		words[0] = image.fault_address;
		words[1] = image.fault_flags;
		break;
	default: break; // Simd: nothing
	}
}

void store_register_set(RegisterImage &image, int set, const HelWord *words) {
	switch (set) {
	case kHelRegsProgram:
		image.ip = words[kHelRegIp];
		image.sp = words[kHelRegSp];
		break;
	case kHelRegsGeneral: std::copy(words, words + kHelNumGprs, image.general.begin()); break;
	case kHelRegsThread:
		image.fs = words[0];
		image.gs = words[1];
		break;
	case kHelRegsSignal:
		for (std::size_t i = 0; i < kSignalGprs.size(); ++i)
			image.general[kSignalGprs[i]] = words[i];
		image.sp = words[15];
		image.ip = words[16];
		image.rflags = words[17];
		image.cs = words[18];
		break;
	default: break; // Simd: nothing
	}
}

} // namespace helsim::kernel
