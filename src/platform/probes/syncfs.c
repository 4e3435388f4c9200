// syncfs (Linux): one call makes a whole file system's writes durable
// (`convert --sync`; src/platform/sync.c).
#include <unistd.h>

int main(void)
{
    return syncfs(0);
}
