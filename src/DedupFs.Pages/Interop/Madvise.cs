// madvise(MADV_HUGEPAGE) for the page cache arena. With transparent huge pages in "madvise"
// mode (Debian's default), a 2 MiB-aligned arena advised this way is backed by 2 MiB pages:
// 512 times fewer page faults while the cache fills, and random hits over hundreds of MiB
// stop missing the TLB on every page. Best effort: failure only costs speed.
using System.Runtime.InteropServices;

namespace DedupFs.Pages.Interop;

internal static unsafe partial class Madvise
{
    private const int MADV_HUGEPAGE = 14;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* addr, nuint length, int advice);

    public static bool TryHugePages(void* addr, nuint length) =>
        OperatingSystem.IsLinux() && madvise(addr, length, MADV_HUGEPAGE) == 0;
}
