// The few libc calls the store needs that .NET does not expose on a SafeFileHandle:
// fdatasync for the page file (data durability before the metadata that reaches it commits),
// and posix_fadvise to keep the page file out of the kernel's page cache (Store.HostCache.cs).
using System.Runtime.InteropServices;

namespace DedupFs.Store.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fsync(int fd);

    /// <summary>Returns the error number itself (0 on success), not -1 and errno.</summary>
    [LibraryImport("libc")]
    internal static partial int posix_fadvise(int fd, long offset, long length, int advice);

    internal const int POSIX_FADV_DONTNEED = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    private const int O_RDONLY = 0, O_DIRECTORY = 0x10000;

    /// <summary>fsync of a directory, so that files just created in it survive a crash.</summary>
    internal static void FsyncDirectory(string path)
    {
        int fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd < 0) return; // best effort: the next commit's fsyncs cover the files themselves
        try { fsync(fd); }
        finally { close(fd); }
    }
}
