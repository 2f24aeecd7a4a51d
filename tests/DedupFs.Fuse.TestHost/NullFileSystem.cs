using System.Text;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.TestHost;

/// <summary>
/// The transport benchmark's filesystem, identical in behaviour to native/bench/nullfs_ll.c:
/// a root directory with a 1 TiB file "zero" that reads as zeros and discards writes, and any
/// number of empty files made with CREATE. Timeouts are 0 so every stat(2) reaches the daemon:
/// what is measured is the transport, not the kernel's caches.
/// </summary>
public sealed class NullFileSystem : IFuseFileSystem
{
    private const ulong ZeroIno = 2;
    private const ulong ZeroSize = 1UL << 40;
    private static readonly byte[] ZeroName = "zero"u8.ToArray();

    private readonly object _lock = new();
    private readonly Dictionary<string, (ulong Ino, uint Mode)> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, uint> _modes = new();
    private ulong _nextIno = 3;

    public int Lookup(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, out FuseEntryOut entry)
    {
        entry = default;
        if (parent != NodeId.Root)
        {
            return parent.Value == ZeroIno ? Errno.ENOTDIR : Errno.ENOENT;
        }

        if (name.SequenceEqual(ZeroName))
        {
            entry = Entry(ZeroIno, 0x81A4, ZeroSize);
            return Errno.Success;
        }

        lock (_lock)
        {
            if (_names.Count > 0 && _names.TryGetValue(Encoding.UTF8.GetString(name), out var found))
            {
                entry = Entry(found.Ino, found.Mode, 0);
                return Errno.Success;
            }
        }

        return Errno.ENOENT;
    }

    public int GetAttr(FuseRequestContext ctx, NodeId node, FileHandle? fh, out FuseAttrOut attr)
    {
        attr = default;
        if (node == NodeId.Root)
        {
            attr.Attr = Attr(1, 0x41ED, 0, nlink: 2);
            return Errno.Success;
        }

        if (node.Value == ZeroIno)
        {
            attr.Attr = Attr(ZeroIno, 0x81A4, ZeroSize);
            return Errno.Success;
        }

        lock (_lock)
        {
            if (_modes.TryGetValue(node.Value, out uint mode))
            {
                attr.Attr = Attr(node.Value, mode, 0);
                return Errno.Success;
            }
        }

        return Errno.ENOENT;
    }

    public int Open(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = new FuseOpenOut { OpenFlags = OpenReplyFlags.DirectIo };
        if (node.Value == ZeroIno)
        {
            return Errno.Success;
        }

        lock (_lock)
        {
            return _modes.ContainsKey(node.Value) ? Errno.Success : node == NodeId.Root ? Errno.EISDIR : Errno.ENOENT;
        }
    }

    public int Read(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref ReadBuffer data)
    {
        ulong size = node.Value == ZeroIno ? ZeroSize : 0;
        ulong available = (ulong)offset >= size ? 0 : size - (ulong)offset;
        data.AppendZeros((int)Math.Min((ulong)data.Size, available));
        return Errno.Success;
    }

    public int Write(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ReadOnlySpan<byte> data, uint writeFlags, out int bytesWritten)
    {
        bytesWritten = data.Length;
        return Errno.Success;
    }

    public int Create(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        entry = default;
        open = new FuseOpenOut { OpenFlags = OpenReplyFlags.DirectIo };
        if (parent != NodeId.Root)
        {
            return parent.Value == ZeroIno ? Errno.ENOTDIR : Errno.ENOENT;
        }

        if (name.SequenceEqual(ZeroName))
        {
            return Errno.EEXIST;
        }

        string key = Encoding.UTF8.GetString(name);
        lock (_lock)
        {
            if (_names.ContainsKey(key))
            {
                return Errno.EEXIST;
            }

            ulong ino = _nextIno++;
            uint fileMode = 0x8000 | (mode & 0xFFF);
            _names[key] = (ino, fileMode);
            _modes[ino] = fileMode;
            entry = Entry(ino, fileMode, 0);
        }

        return Errno.Success;
    }

    public int Unlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name)
    {
        if (parent == NodeId.Root && name.SequenceEqual(ZeroName))
        {
            return Errno.EPERM;
        }

        string key = Encoding.UTF8.GetString(name);
        lock (_lock)
        {
            if (parent != NodeId.Root || !_names.Remove(key, out var removed))
            {
                return Errno.ENOENT;
            }

            _modes.Remove(removed.Ino);
        }

        return Errno.Success;
    }

    public int Flush(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong lockOwner) => Errno.Success;

    public int StatFs(FuseRequestContext ctx, NodeId node, out FuseKStatFs stat)
    {
        stat = new FuseKStatFs { Blocks = 1 << 30, Bfree = 1 << 30, Bavail = 1 << 30, Files = 1 << 20, Ffree = 1 << 20, Bsize = 4096, Frsize = 4096, NameLen = 255 };
        return Errno.Success;
    }

    public int ReadDir(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref DirectoryWriter writer)
    {
        if (node != NodeId.Root)
        {
            return Errno.ENOTDIR;
        }

        var listing = new List<(byte[] Name, ulong Ino, uint Mode)> { ("."u8.ToArray(), 1, 0x41ED), (".."u8.ToArray(), 1, 0x41ED), (ZeroName, ZeroIno, 0x81A4) };
        lock (_lock)
        {
            listing.AddRange(_names.Select(pair => (Encoding.UTF8.GetBytes(pair.Key), pair.Value.Ino, pair.Value.Mode)));
        }

        for (int i = (int)offset; i < listing.Count; i++)
        {
            var (name, ino, mode) = listing[i];
            // READDIRPLUS entries carry no node id here (0), so the kernel takes no lookup reference.
            var entry = new FuseEntryOut { Attr = Attr(ino, mode, ino == ZeroIno ? ZeroSize : 0) };
            if (!writer.TryAdd(name, in entry, (ulong)(i + 1)))
            {
                break;
            }
        }

        return Errno.Success;
    }

    private static FuseEntryOut Entry(ulong ino, uint mode, ulong size) =>
        new() { NodeId = ino, Generation = 1, Attr = Attr(ino, mode, size) };

    private static FuseAttr Attr(ulong ino, uint mode, ulong size, uint nlink = 1) =>
        new() { Ino = ino, Mode = mode, Size = size, Nlink = nlink, BlkSize = 4096 };
}
