/* The version of the library that is loaded, which may differ from the header's. */
#include "../internal.h"

const char *ecp_version(void) { return ECP_VERSION; }
