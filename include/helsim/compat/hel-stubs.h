/* Managarm's <hel-stubs.h>, for code written against Managarm: the helsim::helsim target puts this
 * folder on the include path. */
#include <helsim/hel-stubs.h>
