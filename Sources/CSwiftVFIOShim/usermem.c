/* Guarded user-memory copies (naive placeholder: replaced by the SIGSEGV-guarded version). */
#define _GNU_SOURCE
#include "swiftvfio_shim.h"
#include <errno.h>
#include <string.h>

int svfio_copy_from_user(void *dst, uintptr_t src, size_t len) {
    if (len && src < 4096) return -EFAULT;
    memcpy(dst, (const void *)src, len);
    return 0;
}
int svfio_copy_to_user(uintptr_t dst, const void *src, size_t len) {
    if (len && dst < 4096) return -EFAULT;
    memcpy((void *)dst, src, len);
    return 0;
}
long svfio_strncpy_from_user(char *dst, uintptr_t src, size_t max) {
    if (src < 4096) return -EFAULT;
    const char *s = (const char *)src;
    for (size_t i = 0; i < max; i++) { dst[i] = s[i]; if (!s[i]) return (long)i; }
    return (long)max;
}
