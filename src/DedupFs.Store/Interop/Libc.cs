// The few libc calls the store needs that .NET does not expose on a SafeFileHandle:
// fdatasync for the page file (data durability before the metadata that reaches it commits).
using System.Runtime.InteropServices;

namespace DedupFs.Store.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fsync(int fd);

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
