#define _GNU_SOURCE
#include "cspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Closes descriptors first..last (last < 0: all above first): close_range(2), or, on a kernel
   without it (before 5.9), one close(2) per possible descriptor up to the soft limit. */
static void close_from_to(int first, int last) {
    if (syscall(SYS_close_range, (unsigned)first, last < 0 ? ~0U : (unsigned)last, 0) == 0) return;
    struct rlimit limit;
    int top = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? (int)limit.rlim_cur - 1 : 65535;
    if (last >= 0 && last < top) top = last;
    for (int fd = first; fd <= top; fd++) (void)close(fd);
}

/* Only async-signal-safe system calls run between fork and exec: the parent has many threads. */
static void child(const char *path, char *const argv[], char *const envp[], int output_fd, int keep_fd,
                  pid_t parent, int error_fd) {
    int err;
    /* error_fd must survive until exec and not be overwritten by the dup2 calls: move it above 3 if needed. */
    if (error_fd <= 3) {
        int moved = fcntl(error_fd, F_DUPFD_CLOEXEC, 10);
        if (moved < 0) goto fail;
        error_fd = moved;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) goto fail;
    /* The parent may have died before the death signal was armed. */
    if (getppid() != parent) _exit(127);
    if (setpgid(0, 0) != 0) goto fail;

    sigset_t empty;
    sigemptyset(&empty);
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) (void)sigaction(sig, &dfl, NULL);
    }
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) goto fail;

    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) goto fail;
    if (dup2(null_fd, 0) < 0 || dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) goto fail;
    if (keep_fd >= 0) {
        if (keep_fd == 3) {
            if (fcntl(3, F_SETFD, 0) != 0) goto fail;
        } else if (dup2(keep_fd, 3) < 0) {
            goto fail;
        }
    }
    int first_closed = keep_fd >= 0 ? 4 : 3;
    /* Close everything else except the exec-error pipe (close-on-exec, closed by exec itself). */
    if (error_fd > first_closed) close_from_to(first_closed, error_fd - 1);
    close_from_to(error_fd + 1, -1);
    execve(path, argv, envp);
fail:
    err = errno;
    (void)!write(error_fd, &err, sizeof err);
    _exit(127);
}

int apt_layer_spawn(const char *path, char *const argv[], char *const envp[], int output_fd, int keep_fd,
                    pid_t *pid_out) {
    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) return errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(error_pipe[0]);
        close(error_pipe[1]);
        return err;
    }
    if (pid == 0) {
        close(error_pipe[0]);
        child(path, argv, envp, output_fd, keep_fd, parent, error_pipe[1]);
    }
    close(error_pipe[1]);
    /* The child is in its own group before we return, whichever side runs first. */
    (void)setpgid(pid, pid);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(error_pipe[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(error_pipe[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return child_errno;
    }
    *pid_out = pid;
    return 0;
}

int apt_layer_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int apt_layer_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
