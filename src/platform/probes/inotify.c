// inotify, O_PATH and signalfd (Linux): `pycache watch` follows the trees
// by kernel events (src/platform/watch.c) instead of by polling.
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    int s = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int d = open("/", O_PATH | O_DIRECTORY);
    return inotify_add_watch(fd, "/", IN_CREATE | IN_ONLYDIR | IN_MOVE_SELF) + s + d;
}
