// Kernlets (helsim/kernlet.hpp): a registered host function (KernletObject) and its bound
// arguments (BoundKernlet, helBindKernlet), run in IRQ context by an automated IRQ object.
#pragma once

#include <string>
#include <vector>

#include <helsim/kernlet.hpp>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

class BitsetEvent;
class MemoryView;
struct IrqWork;

// What register_kernlet hands out and helBindKernlet needs (Assign), and what a bound kernlet
// has (Assign, which helAutomateIrq needs). thor's rights for these handles are not in
// hel-reference.md; helsim gives the one right each use needs.
inline constexpr std::uint32_t kKernletDefaultRights = kHelRightAssign;
inline constexpr std::uint32_t kBoundKernletDefaultRights = kHelRightAssign;

class KernletObject final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::kernlet_object;
	KernletObject(Kernel &kernel, std::string name, std::vector<KernletParameter> signature,
			KernletFn fn)
	: Object{kernel, kKind}, name_{std::move(name)},
	  signature_{std::move(signature)}, fn_{std::move(fn)} {}

	const std::string &name() const { return name_; }
	const std::vector<KernletParameter> &signature() const { return signature_; }
	const KernletFn &fn() const { return fn_; }

private:
	const std::string name_;
	const std::vector<KernletParameter> signature_;
	const KernletFn fn_;
};

// One argument of a bound kernlet.
struct KernletBinding {
	KernletParameter type = KernletParameter::offset;
	std::uint32_t offset = 0;
	Ref<MemoryView> view;
	Ref<BitsetEvent> event;
};

class BoundKernlet final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::bound_kernlet;
	BoundKernlet(Kernel &kernel, Ref<KernletObject> kernlet, std::vector<KernletBinding> bindings);
	~BoundKernlet() override;

	const std::vector<KernletBinding> &bindings() const { return bindings_; }
	void for_each_reference(const std::function<void(Object &)> &f) override;

	// Runs the kernlet (IRQ context: the line's lock is held); bitset triggers go to `work`.
	KernletResult invoke(IrqWork &work) const;

private:
	const Ref<KernletObject> kernlet_;
	const std::vector<KernletBinding> bindings_;
};

} // namespace helsim::kernel
