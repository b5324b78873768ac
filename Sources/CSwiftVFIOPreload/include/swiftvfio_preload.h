// SPDX-License-Identifier: Apache-2.0
/* libswiftvfio-preload.so: the LD_PRELOAD interposer that runs unmodified VFIO clients against
 * the libswiftvfio model (docs/PRELOAD.md).
 *
 * Use:   LD_PRELOAD=/path/to/libswiftvfio-preload.so  ./vfio-client
 *
 * The interposer exports the libc functions it interposes (open, ioctl, close, dup, read, mmap,
 * stat, ...: see docs/PRELOAD.md) and this one function of its own. It loads libswiftvfio.so from
 * its own directory on the first use of a model path or fd, and reaches the model only through
 * that library's C entry points, so a process has one model however it got there.
 */
#ifndef SWIFTVFIO_PRELOAD_H
#define SWIFTVFIO_PRELOAD_H

#ifdef __cplusplus
extern "C" {
#endif

/* 0 while libswiftvfio.so has not been needed yet, 1 once it is loaded (the model is in use),
 * -1 if loading it failed (model paths then answer ENOENT). A program can look this up with
 * dlsym(RTLD_DEFAULT, "swiftvfio_preload_state") to tell whether it runs under the preload. */
int swiftvfio_preload_state(void);

#ifdef __cplusplus
}
#endif
#endif
