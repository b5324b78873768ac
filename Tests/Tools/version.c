// SPDX-License-Identifier: Apache-2.0
/* The version, compile time against run time (Scripts/test-tools.sh): prints
 * "<swiftvfio_version()> <major> <minor> <patch> <SWIFTVFIO_VERSION_NUMBER>" and exits 0 when the
 * library's numbers equal the header's SWIFTVFIO_VERSION_* macros. The script compares the line
 * with VERSION, and runs it against the debug library and the installed release library (whose
 * SONAME and .pc it checks too). */
#include <swiftvfio.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    int major = -1, minor = -1, patch = -1;
    const char *v = swiftvfio_version(&major, &minor, &patch);
    printf("%s %d %d %d %d\n", v, major, minor, patch, SWIFTVFIO_VERSION_NUMBER);
    /* NULL out-pointers: not wanted, not an error. */
    if (swiftvfio_version(NULL, NULL, NULL) != v && strcmp(swiftvfio_version(NULL, NULL, NULL), v) != 0)
        return 1;
    return !(major == SWIFTVFIO_VERSION_MAJOR && minor == SWIFTVFIO_VERSION_MINOR && patch == SWIFTVFIO_VERSION_PATCH &&
             strcmp(v, SWIFTVFIO_VERSION_STRING) == 0);
}
