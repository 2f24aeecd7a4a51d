namespace DedupFs.Images;

/// <summary>
/// A directory descriptor that every path of an image is resolved beneath. With openat2 and
/// RESOLVE_BENEATH the kernel refuses any resolution that would leave the root (through "..",
/// an absolute symlink or a relative one that climbs out), atomically, so a symlink placed by an
/// earlier entry cannot redirect a later write. Symlinks that stay inside are followed in the
/// directory part of a path (as a container runtime would), never in the last component. Kernels
/// without openat2 get a walk one component at a time with O_NOFOLLOW, which refuses every
/// symlink in the directory part: stricter, never looser.
/// </summary>
internal sealed class SafeRoot : IDisposable
{
    private static readonly Lazy<bool> KernelHasOpenat2 = new(() =>
    {
        int fd = Native.OpenAt2(Native.AtFdCwd, "/", Native.OPath | Native.OCloExec, 0);
        if (fd >= 0) Native.Close(fd);
        return fd != -Native.ENOSYS;
    });

    private readonly bool _openat2;

    public int Fd { get; private set; }

    public SafeRoot(string directory, bool forceFallback = false)
    {
        Fd = Native.OpenAt(Native.AtFdCwd, directory, Native.OPath | Native.ODirectory | Native.ONoFollow | Native.OCloExec, 0);
        if (Fd < 0) throw new IOException($"{directory}: {Native.Describe(Native.Errno)}");
        _openat2 = !forceFallback && KernelHasOpenat2.Value;
    }

    public void Dispose()
    {
        if (Fd >= 0) Native.Close(Fd);
        Fd = -1;
    }

    /// <summary>
    /// Opens the directory made of the first <paramref name="count"/> components (O_PATH), creating
    /// missing ones (0755) when <paramref name="create"/>; returns the descriptor or -errno.
    /// Components never contain "..", "." or "/" (see <see cref="ImagePath"/>).
    /// </summary>
    public int OpenDirectory(string[] components, int count, bool create)
    {
        int fd = Open(components, count);
        if (fd != -Native.ENOENT || !create) return fd;
        // Create the missing part one level at a time, each mkdir relative to a parent we hold.
        int parent = Open(components, 0);
        for (int i = 0; i < count; i++)
        {
            int next = Open(components, i + 1);
            if (next == -Native.ENOENT)
            {
                if (Native.MkdirAt(parent, components[i], 0x1ED /* 0755 */) != 0 && Native.Errno != Native.EEXIST)
                {
                    int e = Native.Errno;
                    Native.Close(parent);
                    return -e;
                }

                next = Open(components, i + 1);
            }

            Native.Close(parent);
            if (next < 0) return next;
            parent = next;
        }

        return parent;
    }

    private int Open(string[] components, int count)
    {
        const int flags = Native.OPath | Native.ODirectory | Native.OCloExec;
        if (_openat2)
        {
            string path = count == 0 ? "." : string.Join('/', components, 0, count);
            return Native.OpenAt2(Fd, path, flags, Native.ResolveBeneath | Native.ResolveNoMagicLinks);
        }

        int fd = Native.OpenAt(Fd, ".", flags, 0);
        if (fd < 0) return -Native.Errno;
        for (int i = 0; i < count; i++)
        {
            int next = Native.OpenAt(fd, components[i], flags | Native.ONoFollow, 0);
            int e = Native.Errno;
            if (next < 0 && e == Native.ENOTDIR && (Native.LStatMode(fd, components[i], out _) & Native.SIfMt) == Native.SIfLnk)
                e = Native.ELOOP; // a symlink in the directory part: refused without openat2
            Native.Close(fd);
            if (next < 0) return -e;
            fd = next;
        }

        return fd;
    }

    /// <summary>Removes dirfd/name and, for a directory, everything below it, following no symlink.</summary>
    public static void RemoveTree(int dirfd, string name)
    {
        uint mode = Native.LStatMode(dirfd, name, out int errno);
        if (errno == Native.ENOENT) return;
        if (errno != 0) throw new IOException($"{name}: {Native.Describe(errno)}");
        if ((mode & Native.SIfMt) == Native.SIfDir)
        {
            int fd = Native.OpenAt(dirfd, name, Native.ORdOnly | Native.ODirectory | Native.ONoFollow | Native.OCloExec, 0);
            if (fd < 0) throw new IOException($"{name}: {Native.Describe(Native.Errno)}");
            try
            {
                foreach (string child in List(fd)) RemoveTree(fd, child);
            }
            finally
            {
                Native.Close(fd);
            }

            if (Native.UnlinkAt(dirfd, name, Native.AtRemoveDir) != 0 && Native.Errno != Native.ENOENT)
                throw new IOException($"{name}: {Native.Describe(Native.Errno)}");
        }
        else if (Native.UnlinkAt(dirfd, name, 0) != 0 && Native.Errno != Native.ENOENT)
        {
            throw new IOException($"{name}: {Native.Describe(Native.Errno)}");
        }
    }

    /// <summary>The names in the directory open as <paramref name="fd"/>.</summary>
    public static List<string> List(int fd) =>
        // /proc/self/fd/N names the very directory we hold, whatever happened to its path.
        Directory.EnumerateFileSystemEntries($"/proc/self/fd/{fd}").Select(p => Path.GetFileName(p)).ToList();
}

/// <summary>Turns an archive member name into components, refusing what must never reach the disk.</summary>
internal static class ImagePath
{
    /// <summary>The components of <paramref name="name"/>, or null with a reason.</summary>
    public static string[]? Split(string name, out string? reason)
    {
        reason = null;
        if (name.Contains('\0'))
        {
            reason = "NUL in the name";
            return null;
        }

        if (name.StartsWith('/'))
        {
            reason = "absolute path";
            return null;
        }

        var parts = new List<string>();
        foreach (string part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".") continue;
            if (part == "..")
            {
                reason = "\"..\" in the path";
                return null;
            }

            parts.Add(part);
        }

        return [.. parts];
    }
}
