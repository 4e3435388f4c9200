// mallopt(M_MMAP_THRESHOLD) (glibc): a fixed mmap threshold, so the
// listing's large buffers go back to the kernel when freed
// (src/platform/malloc.h).
#include <malloc.h>

int main(void)
{
    return mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1 ? 0 : 1;
}
