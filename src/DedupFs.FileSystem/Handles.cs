// Open file and directory handles: the fh the kernel passes back with every request on an
// open file. A handle is a small object in a concurrent table keyed by a counter; READ and
// WRITE find theirs with one lock-free lookup.
using System.Collections.Concurrent;

namespace DedupFs.FileSystem;

internal sealed class Handles
{
    private readonly ConcurrentDictionary<ulong, object> _open = new();
    private long _next;

    public ulong Add(object handle)
    {
        ulong fh = (ulong)Interlocked.Increment(ref _next);
        _open[fh] = handle;
        return fh;
    }

    public T? Get<T>(ulong fh) where T : class => _open.TryGetValue(fh, out object? h) ? h as T : null;

    public object? Remove(ulong fh) => _open.TryRemove(fh, out object? h) ? h : null;
}

/// <summary>An open regular file (or special file).</summary>
internal sealed class OpenFile(Inode node, int flags)
{
    public readonly Inode Node = node;
    public readonly int Flags = flags;

    public bool Append => (Flags & 0x400) != 0; // O_APPEND
}

/// <summary>An open directory: the listing taken at the first READDIR from offset 0, so offsets
/// (positions in it) stay stable however the directory changes meanwhile.</summary>
internal sealed class OpenDirectory(Inode node)
{
    public readonly Inode Node = node;
    public readonly Lock Lock = new();
    public List<(byte[] Name, ulong Ino, uint Type)>? Entries;
}
