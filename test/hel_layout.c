/* Code written the way Managarm's user space is: <hel.h> and <hel-syscalls.h> by Managarm's
 * names (helsim's compat headers), compiled as C11, with the layout facts checked at compile
 * time. hel_layout_test.cpp calls these functions. */
#include <hel-syscalls.h>
#include <hel.h>

#include "hel_layout_facts.h"

/* HEL_SOFT_CHECK on a call that fails: logs and returns. Returns 1 once past it. */
int hel_layout_soft_check_from_c(void) {
	HEL_SOFT_CHECK(helCloseDescriptor(kHelThisUniverse, 12345));
	return 1;
}

/* Every flags and rights parameter is a plain uint32_t: unsuffixed int constants and their
 * combinations are accepted without casts, as in Managarm. */
HelError hel_layout_transfer_from_c(HelHandle handle, HelHandle *out) {
	HelRights exposed = kHelRightRead | kHelRightWrite;
	return helTransferDescriptor(handle, kHelThisUniverse, kHelTransferDescriptorOut, exposed, 0,
			out);
}

size_t hel_layout_descriptor_info_size_from_c(void) { return sizeof(struct HelDescriptorInfo); }
