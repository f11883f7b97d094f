#ifndef APT_LAYER_CSPAWN_H
#define APT_LAYER_CSPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a new process group, with the parent-death signal
/// SIGKILL armed before exec (so the child dies with the thread that started it), stdin from
/// /dev/null, stdout and stderr on `output_fd`, `keep_fd` (when >= 0) as descriptor 3, and every
/// other descriptor closed. Signal dispositions and the mask are reset to defaults.
///
/// Returns 0 and the child's pid in `pid_out`, or an errno value (from fork or exec) on failure.
int apt_layer_spawn(const char *path, char *const argv[], char *const envp[], int output_fd, int keep_fd,
                    pid_t *pid_out);

/// pipe2(2) with O_CLOEXEC: both ends closed on exec, so no other child inherits them.
int apt_layer_pipe(int fds[2]);

/// pidfd_open(2): a descriptor that polls readable when `pid` exits; -1 with errno on failure.
int apt_layer_pidfd_open(pid_t pid);

#endif
